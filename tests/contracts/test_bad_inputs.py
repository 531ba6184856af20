"""Malformed inputs, one table per loader and per command: each is a one-line NddrError (loaders)
or exit status 2 with exactly one ``nddr <cmd>: error:`` line and no traceback (commands)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
import torch

import nddr
from nddr.cli import main
from nddr.data import build_dataset
from nddr.data.base import TargetSpec
from nddr.data.imdb_wiki import IMDBWiki
from nddr.data.nyuv2 import NYUv2
from nddr.errors import NddrError
from nddr.io import save_state_dict
from nddr.tasks import build_task
from nddr.training.checkpoint import model_metadata
from tests.data.test_imdb_wiki import many_subjects, row, write_face, write_mat
from tests.data.test_nyuv2 import H, W, make_nyudmt, make_paper, nyudmt_seg, save_npy, save_png


def _one_line_error(load, fragment: str) -> None:
    with pytest.raises(NddrError) as error:
        load()
    message = str(error.value)
    assert fragment in message and "\n" not in message, message


def _row_ids(rows) -> list[str]:
    return [row_[0] for row_ in rows]


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _pickled_npy(path: Path) -> None:
    np.save(path, np.array([{"code": "runs on load"}], dtype=object), allow_pickle=True)


def _depth_with(value: float):
    depth = np.ones((H, W), np.float32)
    depth[2, 3] = value
    return depth


def _damaged(root: Path, damage) -> Path:
    """Apply a row's damage; a row that returns a Path reads that folder instead."""
    other = damage(root)
    return other if isinstance(other, Path) else root


def _read_every_sample(root: Path) -> None:
    for split in ("train", "test"):
        dataset = NYUv2(root, split)
        for index in range(len(dataset)):
            dataset[index]


# NYUv2, NYUD-MT layout: (id, break the fixture folder, message fragment)
NYUDMT_ROWS = [
    ("missing root", lambda r: r / "absent", "is not a directory"),
    ("missing list", lambda r: (r / "gt_sets" / "val.txt").unlink(), "split list"),
    ("list names a missing image", lambda r: _append(r / "gt_sets/train.txt", "0099\n"), "'0099'"),
    ("list line of two names", lambda r: _append(r / "gt_sets/train.txt", "a b\n"), "one sample"),
    ("list not utf-8", lambda r: (r / "gt_sets/val.txt").write_bytes(b"\xff\xfe"), "as text"),
    ("splits overlap", lambda r: _append(r / "gt_sets/val.txt", "0001\n"), "overlap"),
    ("truncated png", lambda r: _truncate(r / "images/0003.png"), "cannot be decoded"),
    ("truncated jpeg", lambda r: _truncate(r / "images/0001.jpg"), "cannot be decoded"),
    ("empty jpeg", lambda r: (r / "images/0001.jpg").write_bytes(b""), "cannot be decoded"),
    ("text as png", lambda r: (r / "images/0004.png").write_text("hello"), "cannot be decoded"),
    ("label 41", lambda r: save_png(nyudmt_seg(0) + 1, r / "segmentation/0002.png"), "label 41"),
    (
        "rgb labels",
        lambda r: save_png(np.zeros((H, W, 3), np.uint8), r / "segmentation/0003.png"),
        "expected one 8-bit channel",
    ),
    ("truncated labels", lambda r: _truncate(r / "segmentation/0005.png"), "cannot be decoded"),
    (
        "normals channels first",
        lambda r: save_npy(np.ones((3, H, W), np.float32), r / "normals/0003.npy"),
        "expected float (H, W, 3)",
    ),
    (
        "normals of another size",
        lambda r: save_npy(np.ones((H, W + 1, 3), np.float32), r / "normals/0003.npy"),
        "is 6x9 but its image",
    ),
    (
        "integer normals",
        lambda r: save_npy(np.ones((H, W, 3), np.int32), r / "normals/0003.npy"),
        "holds int32",
    ),
    (
        "infinite normals",
        lambda r: save_npy(np.full((H, W, 3), np.inf, np.float32), r / "normals/0003.npy"),
        "infinite normals",
    ),
    ("truncated npy", lambda r: _truncate(r / "normals/0004.npy"), "not a readable .npy"),
    ("pickled npy", lambda r: _pickled_npy(r / "normals/0004.npy"), "not a readable .npy"),
    ("depth NaN", lambda r: save_npy(_depth_with(np.nan), r / "depth/0003.npy"), "NaN depth"),
    ("depth negative", lambda r: save_npy(_depth_with(-1.0), r / "depth/0003.npy"), "negative"),
    (
        "depth integer",
        lambda r: save_npy(np.ones((H, W), np.int16), r / "depth/0003.npy"),
        "expected float (H, W)",
    ),
    ("depth file missing", lambda r: (r / "depth/0005.npy").unlink(), "does not exist"),
]


@pytest.mark.parametrize(("name", "damage", "fragment"), NYUDMT_ROWS, ids=_row_ids(NYUDMT_ROWS))
def test_nyuv2_nyudmt_bad_inputs(tmp_path, name, damage, fragment):
    root = make_nyudmt(tmp_path / "nyu")
    _one_line_error(lambda: _read_every_sample(_damaged(root, damage)), fragment)


def _paper_list(root: Path, prefix: str = "training", target: str = "seg") -> Path:
    return root / "list" / f"{prefix}_{target}.txt"


# NYUv2, the paper's layout: (id, break the fixture folder, message fragment)
PAPER_ROWS = [
    ("no layout at all", lambda r: r / "images", "no NYUv2 layout"),
    (
        "both lists of a split missing",
        lambda r: [_paper_list(r, "testing", t).unlink() for t in ("seg", "normal_mask")],
        "split list missing",
    ),
    (
        "list names a missing image",
        lambda r: [
            _append(_paper_list(r, target=t), f"images/0099.png {t}/0099.png\n")
            for t in ("seg", "normal_mask")
        ],
        "image file",
    ),
    ("label file missing", lambda r: (r / "segmentation/0001.png").unlink(), "does not exist"),
    (
        "list line of one path",
        lambda r: _append(_paper_list(r), "images/0009.png\n"),
        "'image label'",
    ),
    ("list not utf-8", lambda r: _paper_list(r).write_bytes(b"\x00\xff"), "as text"),
    (
        "lists disagree",
        lambda r: _paper_list(r, target="normal_mask").write_text(""),
        "must list the same images",
    ),
    ("truncated png", lambda r: _truncate(r / "images/0002.png"), "cannot be decoded"),
    (
        "label 40",
        lambda r: save_png(np.full((H, W), 40, np.uint8), r / "segmentation/0002.png"),
        "label 40",
    ),
    (
        "grey normals",
        lambda r: save_png(np.zeros((H, W), np.uint8), r / "normals/0001.png"),
        "expected 8-bit RGB",
    ),
    (
        "normals of another size",
        lambda r: save_png(np.full((H + 1, W, 3), 200, np.uint8), r / "normals/0001.png"),
        "is 7x8 but its image",
    ),
    (
        "zero-length normal",
        lambda r: save_png(np.full((H, W, 3), 128, np.uint8), r / "normals/0004.png"),
        "zero length",
    ),
]


@pytest.mark.parametrize(("name", "damage", "fragment"), PAPER_ROWS, ids=_row_ids(PAPER_ROWS))
def test_nyuv2_paper_bad_inputs(tmp_path, name, damage, fragment):
    root = make_paper(tmp_path / "nyu")
    _one_line_error(lambda: _read_every_sample(_damaged(root, damage)), fragment)


def _mat(root: Path, rows=None, **kwargs) -> None:
    write_mat(root / kwargs.pop("file", "imdb.mat"), rows or many_subjects(3, 1), **kwargs)


def _both_mats(root: Path) -> None:
    _mat(root)
    _mat(root, file="wiki.mat", struct="wiki")


def _write(path: Path, content: bytes) -> None:
    path.write_bytes(content)


def _cells(*values) -> np.ndarray:
    array = np.empty((1, len(values)), dtype=object)
    for index, value in enumerate(values):
        array[0, index] = value
    return array


def _v73(root: Path) -> None:
    header = b"MATLAB 7.3 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x02IM"
    _write(root / "imdb.mat", header + b"\0" * 512)


def _truncated_mat(root: Path) -> None:
    _mat(root)
    _truncate(root / "imdb.mat")


def _faces(root: Path, damage) -> None:
    """Two rows whose face images are written, then damaged by ``damage(path)``."""
    _mat(root, [row(1, path="01/a.jpg"), row(2, path="01/b.jpg")])
    for name in ("a.jpg", "b.jpg"):
        write_face(root / "01" / name)
        damage(root / "01" / name)


# IMDB-WIKI: (id, write the folder and return extra IMDBWiki arguments, message fragment)
IMDB_WIKI_ROWS = [
    ("missing root", lambda r: {"root": r / "absent"}, "IMDB-WIKI root"),
    ("no .mat", lambda r: {}, "no imdb.mat or wiki.mat"),
    ("mat= names a missing file", lambda r: {"mat": "gone.mat"}, "does not exist"),
    ("both imdb.mat and wiki.mat", _both_mats, "holds both imdb.mat and wiki.mat"),
    ("text as .mat", lambda r: _write(r / "imdb.mat", b"not a mat"), "MATLAB v5"),
    ("truncated .mat", _truncated_mat, "MATLAB v5"),
    ("v7.3 .mat", _v73, "v7.3"),
    (
        ".mat without the struct",
        lambda r: sio.savemat(r / "imdb.mat", {"faces": np.zeros(3)}),
        "no 'imdb' or 'wiki' struct (faces)",
    ),
    (
        "struct is an array",
        lambda r: sio.savemat(r / "imdb.mat", {"imdb": np.zeros((1, 3))}),
        "not a struct",
    ),
    ("fields missing", lambda r: _mat(r, drop=("dob", "gender")), "lacks the field(s) dob, gender"),
    ("no subject field", lambda r: _mat(r, drop=("celeb_id", "name")), "celeb_id (imdb) or name"),
    (
        "field of shape 2x3",
        lambda r: _mat(r, extra={"gender": np.ones((2, 3))}),
        "field gender has shape (2, 3)",
    ),
    (
        "field of shape 3x1x2",
        lambda r: _mat(r, extra={"dob": np.ones((3, 1, 2))}),
        "field dob has shape (3, 1, 2)",
    ),
    (
        "fields of different lengths",
        lambda r: _mat(r, extra={"face_score": np.ones((1, 2))}),
        "face_score has 2 entries but dob has 3",
    ),
    (
        "numeric field of text",
        lambda r: _mat(r, extra={"dob": np.array([["a", "b", "c"]])}),
        "field dob holds <U1 values",
    ),
    (
        "face box of 3 numbers",
        lambda r: _mat(r, extra={"face_location": _cells(*[np.ones((1, 3))] * 3)}),
        "face_location of row 1 has shape (1, 3)",
    ),
    (
        "path not a string",
        lambda r: _mat(r, extra={"full_path": _cells(np.ones((1, 2)), "a.jpg", "b.jpg")}),
        "full_path of row 1 is a float64 array",
    ),
    ("image missing", lambda r: _faces(r, Path.unlink), "does not exist"),
    ("image undecodable", lambda r: _faces(r, lambda p: _write(p, b"text")), "cannot be decoded"),
    ("image truncated", lambda r: _faces(r, _truncate), "cannot be decoded"),
]


@pytest.mark.parametrize(
    ("name", "setup", "fragment"), IMDB_WIKI_ROWS, ids=_row_ids(IMDB_WIKI_ROWS)
)
def test_imdb_wiki_bad_inputs(tmp_path, name, setup, fragment):
    arguments = {"root": tmp_path, "eval_subjects": 1, "image_size": 16, **(setup(tmp_path) or {})}

    def load() -> None:
        for split in ("train", "test"):
            dataset = IMDBWiki(split=split, **arguments)
            for index in range(len(dataset)):
                dataset[index]

    _one_line_error(load, fragment)


# Built-in datasets' options through build_dataset: (dataset, options, message fragment)
BUILTIN_ROWS = [
    ("scenes", {"colour": 3}, "unknown option of dataset 'scenes' 'colour'"),
    ("scenes", {"size": -4}, "size -4 is invalid"),
    ("scenes", {"size": 8}, "size 8 is invalid"),
    ("scenes", {"size": "big"}, "size 'big' is invalid"),
    ("scenes", {"num_images": 0}, "num_images 0 is invalid"),
    ("scenes", {"num_images": -1}, "num_images -1 is invalid"),
    ("scenes", {"seed": 1.5}, "seed 1.5 is invalid"),
    ("multidigits", {"bogus": 1}, "unknown option of dataset 'multidigits' 'bogus'"),
    ("multidigits", {"size": -1}, "size must be an integer >= 8, got -1"),
    ("multidigits", {"size": True}, "size must be an integer"),
    ("multidigits", {"num_images": -5}, "num_images must be an integer >= 1, got -5"),
    ("multidigits", {"num_images": 2.5}, "num_images must be an integer"),
    ("multidigits", {"seed": -1}, "seed must be an integer >= 0"),
    ("nyuv2", {"size": 3}, "dataset 'nyuv2' takes no options, got 'size'"),
]


@pytest.mark.parametrize(("dataset", "options", "fragment"), BUILTIN_ROWS)
def test_builtin_dataset_bad_options(tmp_path, dataset, options, fragment):
    _one_line_error(lambda: build_dataset(dataset, tmp_path, "test", **options), fragment)
    assert not any(tmp_path.iterdir())  # nothing generated or cached


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    """Files the command rows point at: a real checkpoint, damaged ones, configs, images."""
    root = tmp_path_factory.mktemp("bad-inputs")
    tasks = [
        build_task("segmentation", TargetSpec("segmentation", 6)),
        build_task("normals", TargetSpec("normals")),
    ]
    specs = [task.head_spec() for task in tasks]
    network = nddr.build_network("tiny", specs, "nddr", backbone_options={"width": 4})
    experiment = {"data": {"name": "scenes", "options": {"size": 16, "num_images": 2}}}
    model = save_state_dict(
        network.state_dict(), root / "model.safetensors", model_metadata(network, tasks, experiment)
    )
    (root / "truncated.safetensors").write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    (root / "text.safetensors").write_text("not a safetensors file")
    torch.save({"weight": torch.zeros(2)}, root / "weights.pt")
    save_state_dict(torch.nn.Linear(2, 2).state_dict(), root / "plain.safetensors")
    single = nddr.build_network("tiny", specs, "single", backbone_options={"width": 4})
    nddr.save_network(single, root / "single.safetensors")
    save_png(np.zeros((20, 24, 3), np.uint8), root / "room.png")
    (root / "notes.png").write_text("not an image")
    (root / "a_file").write_text("a file where a folder should be")
    (root / "empty").mkdir()
    (root / "list.yaml").write_text("- optim\n- data\n")
    (root / "scalar.yaml").write_text("42\n")
    (root / "broken.yaml").write_text("data: [unclosed\n")
    (root / "typo.yaml").write_text("optim:\n  stepz: 3\n")
    (root / "wrong_type.yaml").write_text("data:\n  batch_size: many\n")
    (root / "orphan.yaml").write_text("base: nowhere.yaml\n")
    (root / "loop.yaml").write_text("base: loop.yaml\n")
    (root / "loop_a.yaml").write_text("base: loop_b.yaml\n")
    (root / "loop_b.yaml").write_text("base: loop_a.yaml\n")
    (root / "broken_base.yaml").write_text("base: broken.yaml\n")
    (root / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"name: run\nrun:\n  out: {root}\n  progress: false\n")
    named = {path.name.replace(".", "_"): str(path) for path in root.iterdir()}
    return {**named, "missing": str(root / "missing"), "root": str(root)}


def _exits_2_with_one_error_line(argv: list[str], fragment: str, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith(f"nddr {argv[0]}")]
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and ": error: " in errors[0] and fragment in errors[0], err


def _argv_id(value) -> str:
    return " ".join(value) if isinstance(value, list) else value


def _run_table(command: str, argv: list[str], fragment: str, paths, capsys) -> None:
    argv = [command, *(arg.format(**paths) for arg in argv)]
    _exits_2_with_one_error_line(argv, fragment, capsys)


TRAIN_ROWS = [
    (["optim.stepz=3"], "unknown key 'optim.stepz': did you mean 'optim.steps'?"),
    (["{typo_yaml}"], "unknown key 'optim.stepz'"),
    (["optim.steps=abc"], "optim.steps = 'abc' is not valid"),
    (["data.batch_size=[1]"], "data.batch_size = [1] is not valid"),
    (["{wrong_type_yaml}"], "data.batch_size = 'many' is not valid"),
    (["=3"], "is not key=value"),
    (["optim.steps.x=3"], "'steps' is not a section"),
    (["{missing}.yaml"], "does not exist"),
    (["{broken_yaml}"], "is not valid YAML line"),
    (["{list_yaml}"], "must hold a mapping of sections"),
    (["{scalar_yaml}"], "must hold a mapping of sections"),
    (["{orphan_yaml}"], "base file"),
    (["{loop_yaml}"], "leads back to itself"),
    (["{loop_a_yaml}"], "leads back to itself"),
    (["{broken_base_yaml}"], "base file"),
    (["{latin1_yaml}"], "is not UTF-8 text"),
    (["optim.steps={{a"], "the value is not valid YAML"),
    (["data.crop_size=0"], "data.crop_size = 0 is not valid"),
    (["--resume", "{empty}"], "no config.yaml there"),
    (["--resume", "{missing}"], "no config.yaml there"),
    (["--resume", "{run}"], "no checkpoint to resume"),
    (["--resume", "{run}", "{typo_yaml}"], "pass overrides only"),
    (["--resume", "{run}", "--from-single-task"], "drop --resume"),
]


@pytest.mark.parametrize(("argv", "fragment"), TRAIN_ROWS, ids=_argv_id)
def test_train_bad_inputs(argv, fragment, paths, capsys):
    _run_table("train", argv, fragment, paths, capsys)


# Shared by eval, predict and inspect: checkpoints that are not one.
CHECKPOINT_ROWS = [
    ("{missing}", "does not exist"),
    ("{empty}", "holds no checkpoint"),
    ("{text_safetensors}", "is not a readable safetensors file"),
    ("{truncated_safetensors}", "is not a readable safetensors file"),
    ("{weights_pt}", "is not a readable safetensors file"),
]


EVAL_ROWS = [
    *[([checkpoint], fragment) for checkpoint, fragment in CHECKPOINT_ROWS],
    (["{plain_safetensors}"], "not a training checkpoint of nddr"),
    (["{model_safetensors}", "--device", "tpu"], "device 'tpu' is not a device"),
    (["{model_safetensors}", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["{model_safetensors}", "--batch-size", "-2"], "--batch-size must be at least 1, got -2"),
    (["{model_safetensors}", "--batch-size", "two"], "invalid int value: 'two'"),
]


@pytest.mark.parametrize(("argv", "fragment"), EVAL_ROWS, ids=_argv_id)
def test_eval_bad_inputs(argv, fragment, paths, capsys):
    _run_table("eval", argv, fragment, paths, capsys)


PREDICT_ROWS = [
    *[([checkpoint, "{room_png}", "--out", "{root}/out"], f) for checkpoint, f in CHECKPOINT_ROWS],
    (["{model_safetensors}", "{missing}.png", "--out", "{root}/out"], "does not exist"),
    (["{model_safetensors}", "{notes_png}", "--out", "{root}/out"], "cannot be decoded"),
    (["{model_safetensors}", "{typo_yaml}", "--out", "{root}/out"], "cannot be decoded"),
    (["{model_safetensors}", "{empty}", "--out", "{root}/out"], "holds no image file"),
    (["{model_safetensors}", "{room_png}", "--out", "{a_file}"], "cannot create the --out"),
    (["{model_safetensors}", "{room_png}"], "the following arguments are required: --out"),
]


@pytest.mark.parametrize(("argv", "fragment"), PREDICT_ROWS, ids=_argv_id)
def test_predict_bad_inputs(argv, fragment, paths, capsys):
    _run_table("predict", argv, fragment, paths, capsys)


INSPECT_ROWS = [
    *[([checkpoint], fragment) for checkpoint, fragment in CHECKPOINT_ROWS],
    (["{plain_safetensors}"], "no nddr build config"),
    (["{single_safetensors}"], "'single' network"),
    (["{model_safetensors}", "--out", "{a_file}/heatmap.png"], "cannot write the heatmap"),
]


@pytest.mark.parametrize(("argv", "fragment"), INSPECT_ROWS, ids=_argv_id)
def test_inspect_bad_inputs(argv, fragment, paths, capsys):
    _run_table("inspect", argv, fragment, paths, capsys)


SCENES = ["--set", "num_images=2", "--set", "size=16"]


PREPARE = ["prepare", "nyuv2", "--splits", "{a_file}", "--mapping", "{a_file}", "--out", "{root}/p"]


DATA_ROWS = [
    (["check", "nyu"], "unknown dataset 'nyu': did you mean 'nyuv2'?"),
    (["show", "mnist", "--out", "{root}/g.png"], "unknown dataset 'mnist'"),
    (["check", "nyuv2", "{missing}"], "is not a directory"),
    (["check", "nyuv2", "{a_file}"], "is not a directory"),
    (["check", "imdb_wiki", "{empty}"], "no imdb.mat or wiki.mat"),
    (["check", "nyuv2_npy", "{missing}"], "nyuv2_npy root"),
    (["check", "nyuv2_npy", "{empty}"], "train split folder"),
    (["check", "cityscapes_npy", "{empty}", "--set", "num_classes=13"], "use 7 or 19"),
    (["check", "cityscapes_npy", "{empty}", "--set", "classes=7"], "'num_classes'"),
    (["check", "nyuv2_npy", "{empty}", "--set", "num_classes=13"], "takes no options"),
    (["check", "nyuv2"], "reads the user's files"),
    (["check", "scenes", "--set", "size"], "--set 'size' is not KEY=VALUE"),
    (["check", "scenes", "--set", "=16"], "--set '=16' is not KEY=VALUE"),
    (["check", "scenes", "--set", "colour=3"], "unknown option of dataset 'scenes' 'colour'"),
    (["check", "scenes", "--set", "size=-16"], "size -16 is invalid"),
    (["check", "nyuv2", "{empty}", "--set", "size=3"], "takes no options"),
    (["check", "scenes", *SCENES, "--tasks", "edges"], "no target 'edges'"),
    (["check", "scenes", *SCENES, "--limit", "0"], "--limit 0: check at least one sample"),
    (["check", "scenes", *SCENES, "--limit", "-1"], "--limit -1"),
    (["check", "scenes", "--split", "val"], "invalid choice: 'val'"),
    (["show", "scenes", *SCENES, "--out", "{root}/grid.jpg"], "must end in .png"),
    (["show", "scenes", *SCENES, "--num", "0", "--out", "{root}/g.png"], "--num 0"),
    (["show", "scenes", *SCENES, "--out", "{a_file}/grid.png"], "cannot write --out"),
    (["show", "scenes", "--set", "bad", "--out", "{root}/g.png"], "is not KEY=VALUE"),
    ([*PREPARE, "--labeled", "{missing}.mat"], "does not exist"),
    ([*PREPARE, "--labeled", "{a_file}"], "is not a readable MATLAB .mat file"),
    ([*PREPARE[:1], "scenes", *PREPARE[2:], "--labeled", "x"], "invalid choice: 'scenes'"),
    (
        ["check", "folder", "{empty}"],
        "dataset.yaml' does not exist: write one with `nddr data init",
    ),
    (["check", "folder", "{root}", "--set", "manifest=typo.yaml"], "unknown key 'optim': use"),
    (["check", "folder", "{root}", "--set", "manifest=list.yaml"], "must hold a mapping"),
    (["check", "folder", "{empty}", "--set", "size=3"], "unknown option of dataset 'folder'"),
    (["init", "{missing}"], "is not a directory: pass the data root"),
    (["init", "{empty}"], "no image folder in"),
    (["check", "nddr.nowhere:Thing", "{empty}"], "module 'nddr.nowhere' cannot be imported"),
    (["check", "nddr.data.base:Nothing"], "has no 'Nothing': check the class name"),
    (["check", "nddr.data.base:check_sample"], "is not a MultiTaskDataset subclass"),
]


@pytest.mark.parametrize(("argv", "fragment"), DATA_ROWS, ids=_argv_id)
def test_data_bad_inputs(argv, fragment, paths, capsys):
    _run_table("data", argv, fragment, paths, capsys)


REPRODUCE_ROWS = [
    (["tabel4"], "unknown suite 'tabel4': did you mean 'table4'?"),
    (["nyuv2-np", "--dry-run"], "did you mean 'nyuv2-npy'?"),
    (["cpu-digit", "--dry-run"], "did you mean 'cpu-digits'?"),
    (["table4", "--dry-run", "--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["table4", "--dry-run", "--seeds", "-3"], "--seeds must be at least 1, got -3"),
    (["table4", "--dry-run", "--seeds", "two"], "invalid int value: 'two'"),
    (["table4", "--dry-run", "--set", "optim.stepz=1"], "unknown key 'optim.stepz'"),
    (["table4", "--dry-run", "--set", "steps"], "is not key=value"),
    (["table4", "--dry-run", "--set", "run.seed=3"], "reproduce sets run.seed itself"),
    (["table4", "--dry-run", "--only", "nope"], "unknown row of suite 'table4' 'nope'"),
    (["table4", "--dry-run", "--configs", "{missing}"], "no configs folder"),
]


@pytest.mark.parametrize(("argv", "fragment"), REPRODUCE_ROWS, ids=_argv_id)
def test_reproduce_bad_inputs(argv, fragment, paths, capsys):
    _run_table("reproduce", argv, fragment, paths, capsys)


MODELS_ROWS = [
    (["--params", "unknown"], "unknown backbone 'unknown'"),
    (["--params", "vgg16"], "did you mean 'vgg16_lfov'?"),
    (["--params", "tiny", "--tasks", "0"], "--tasks must be at least 1, got 0"),
    (["--params", "tiny", "--tasks", "-1"], "--tasks must be at least 1, got -1"),
    (["--tasks", "x"], "invalid int value: 'x'"),
]


@pytest.mark.parametrize(("argv", "fragment"), MODELS_ROWS, ids=_argv_id)
def test_models_bad_inputs(argv, fragment, paths, capsys):
    _run_table("models", argv, fragment, paths, capsys)


BENCH_ROWS = [
    (["--variants", "nddr2"], "unknown variant 'nddr2'"),
    (["--backbone", "nope"], "unknown backbone 'nope'"),
    (["--batch", "0"], "--batch must be at least 1, got 0"),
    (["--batch", "-2"], "--batch must be at least 1, got -2"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    (["--size", "4", "4"], "--size 4 4 is too small"),
    (["--tasks", "0"], "--tasks must be at least 1"),
    (["{typo_yaml}"], "a config is read only with --data"),
    (["--data", "--batches", "0"], "--batches must be at least 1, got 0"),
    (["--data", "{broken_yaml}"], "is not valid YAML"),
    (["--execution", "bogus"], "invalid choice: 'bogus'"),
]


@pytest.mark.parametrize(("argv", "fragment"), BENCH_ROWS, ids=_argv_id)
def test_bench_bad_inputs(argv, fragment, paths, capsys):
    _run_table("bench", [*argv, "--no-memory"], fragment, paths, capsys)
