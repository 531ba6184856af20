"""``nddr train / eval / predict`` end to end on a tiny config and on the MTAN / LibMTL .npy
layouts, and their one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image

from nddr.cli import main
from tests.data.folder.test_dataset import CLASS_NAMES, make_folder
from tests.data.test_mtan_npy import write_layout
from tests.helpers import TINY


def _train(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    assert main(["train", str(config), f"run.out={tmp_path}", "optim.steps=2"]) == 0
    out = capsys.readouterr().out
    assert "test metrics" in out and "miou" in out and "checkpoint" in out
    assert "images/s in training steps" in out
    assert json.loads((tmp_path / "tiny-run" / "results.json").read_text())["images_per_s"] > 0
    return tmp_path / "tiny-run"


def test_train_then_eval_and_predict(tmp_path, capsys):
    run_dir = _train(tmp_path, capsys)
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert main(["eval", str(run_dir), "--device", "gpu"]) == 2
    assert "device 'gpu' is not a device" in capsys.readouterr().err
    assert main(["eval", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated.keys() == results.keys()
    for task in results:
        for metric, value in results[task].items():
            assert abs(evaluated[task][metric] - value) < 1e-6 * max(1, abs(value))
    image = tmp_path / "room.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
        image
    )
    out = tmp_path / "predictions"
    assert main(["predict", str(run_dir), str(image), "--out", str(out)]) == 0
    segmentation = np.asarray(Image.open(out / "room_segmentation.png"))
    assert segmentation.shape == (40, 48, 3)
    normals = np.load(out / "room_normals.npy")
    assert normals.shape == (40, 48, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=2), 1.0, rtol=1e-4)
    labels = np.load(out / "room_segmentation.npy")
    assert labels.dtype == np.uint8 and labels.max() < 6
    assert (
        json.loads((out / "predictions.json").read_text())["room.png"]["normals"]
        == "room_normals.png"
    )
    assert main(["inspect", str(run_dir), "--out", str(tmp_path / "shares.png")]) == 0
    assert "NDDR 1" in capsys.readouterr().out and (tmp_path / "shares.png").is_file()


def test_bad_config_and_checkpoint_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "optim.stepz=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "nddr train: error: config: unknown key 'optim.stepz': did you mean 'optim.steps'?"
    )
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  variant: ndr\n")
    assert main(["train", str(bad)]) == 2
    assert "model.variant = 'ndr' is not valid" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    corrupt = tmp_path / "model.safetensors"
    corrupt.write_bytes(b"not a checkpoint")
    assert main(["predict", str(corrupt), str(corrupt), "--out", str(tmp_path)]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_pipeline_trains_single_task_networks_then_the_fused_one(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    argv = ["train", str(config), f"run.out={tmp_path}", "optim.steps=1", "--from-single-task"]
    assert main(argv) == 0
    for task in ("segmentation", "normals"):
        single = json.loads((tmp_path / f"tiny-run-single-{task}" / "results.json").read_text())
        assert list(single["results"]) == [task]
    fused = (tmp_path / "tiny-run" / "config.yaml").read_text()
    assert "tiny-run-single-segmentation/checkpoints/step_00000001/model.safetensors" in fused
    assert "tiny-run-single-normals" in fused


def test_bf16_autocast_and_channels_last_on_cpu(tmp_path):
    from nddr.training import train
    from nddr.training.config import build_config

    config = build_config(
        TINY, [f"run.out={tmp_path}", "optim.steps=2", "run.amp=bf16", "run.channels_last=true"]
    )
    summary = train(config)
    assert all(
        np.isfinite(value) for values in summary["results"].values() for value in values.values()
    )


def test_train_eval_predict_on_a_folder_dataset(tmp_path, capsys):
    stems = [f"{k:02d}" for k in range(10)]
    root = make_folder(tmp_path / "data", stems, size=(32, 40))
    config = {
        **TINY,
        "name": "folder-run",
        "data": {
            **TINY["data"],
            "name": "folder",
            "root": str(root),
            "tasks": ["segmentation", "animal"],
            "options": {},
            "batch_size": 4,
        },
        "optim": {"steps": 2, "lr": 0.01},
    }
    path = tmp_path / "folder.yaml"
    path.write_text(json.dumps(config))
    assert main(["train", str(path), f"run.out={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "miou" in out and "accuracy" in out
    run_dir = tmp_path / "folder-run"
    assert (root / "splits" / "test.txt").read_text().count("\n") == 3
    assert main(["eval", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert set(evaluated) == {"segmentation", "animal"}
    trained = json.loads((run_dir / "results.json").read_text())["results"]
    assert evaluated["animal"]["accuracy"] == trained["animal"]["accuracy"]
    out_dir = tmp_path / "predictions"
    assert (
        main(["predict", str(run_dir), str(root / "images" / "00.png"), "--out", str(out_dir)]) == 0
    )
    predicted = json.loads((out_dir / "predictions.json").read_text())["00.png"]
    assert predicted["animal"]["class"] in CLASS_NAMES
    labels = np.load(out_dir / "00_segmentation.npy")
    assert labels.shape == (32, 40) and labels.max() < 3


@pytest.mark.parametrize(
    ("dataset", "config", "tasks"),
    [
        ("nyuv2_npy", "nyuv2_npy/nddr", ("segmentation", "depth", "normals")),
        ("cityscapes_npy", "cityscapes_npy/nddr", ("segmentation", "depth")),
    ],
)
def test_train_eval_predict_on_the_mtan_npy_layouts(tmp_path, capsys, dataset, config, tasks):
    """The packaged config of each MTAN / LibMTL layout, on a tiny backbone and fixture files."""
    root = write_layout(tmp_path / "data", dataset, train=4, test=2, size=(32, 48))
    overrides = [
        f"data.root={root}",
        "data.batch_size=2",
        "data.eval_batch_size=2",
        "data.workers=0",
        "model.backbone=tiny",
        "model.backbone_weights=null",
        "model.backbone_options={width: 4}",
        "optim.steps=2",
        f"run.out={tmp_path / 'runs'}",
        "run.device=cpu",
        "run.progress=false",
    ]
    assert main(["train", config, *overrides]) == 0
    assert "test metrics" in capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs").iterdir()
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert set(results) == set(tasks)
    assert {"abs_error", "rel_error"} <= set(results["depth"])
    assert main(["eval", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for task in tasks:
        for metric, value in results[task].items():
            assert abs(evaluated[task][metric] - value) < 1e-6 * max(1, abs(value))
    image = tmp_path / "street.png"
    pixels = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(image)
    out = tmp_path / "predictions"
    assert main(["predict", str(run_dir), str(image), "--out", str(out)]) == 0
    labels = np.load(out / "street_segmentation.npy")
    classes = 13 if dataset == "nyuv2_npy" else 7
    assert labels.shape == (32, 48) and labels.max() < classes
    assert np.load(out / "street_depth.npy").shape == (32, 48)


def test_pascal_context_trains_evaluates_and_predicts_end_to_end(tmp_path, capsys):
    """The packaged PASCAL-Context NDDR config on a PASCAL_MT folder in the real formats, with a
    tiny backbone: train, eval and predict through the CLI, all four tasks."""
    from tests.data.test_pascal_context import make_pascal

    root = make_pascal(tmp_path / "PASCAL_MT")
    overrides = [
        f"data.root={root}",
        f"run.out={tmp_path / 'runs'}",
        "model.backbone=tiny",
        "model.backbone_weights=null",
        "model.backbone_options={width: 4}",
        "data.options.size=8",
        "data.crop_size=8",
        "data.batch_size=3",
        "data.workers=0",
        "optim.steps=1",
        "run.progress=false",
    ]
    assert main(["train", "pascal_context/nddr", *overrides]) == 0
    out = capsys.readouterr().out
    assert "human_parts" in out and "max_f" in out
    run_dir = tmp_path / "runs" / "pascal-context-resnet50-nddr"
    assert main(["eval", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert set(evaluated) == {"semseg", "human_parts", "saliency", "normals"}
    assert set(evaluated["saliency"]) == {"max_f", "miou"}
    predictions = tmp_path / "predictions"
    image = root / "JPEGImages" / "2008_000001.jpg"
    assert main(["predict", str(run_dir), str(image), "--out", str(predictions)]) == 0
    saliency = np.load(predictions / "2008_000001_saliency.npy")
    assert saliency.shape == (6, 8) and 0 <= saliency.min() and saliency.max() <= 1
    parts = np.load(predictions / "2008_000001_human_parts.npy")
    assert parts.dtype == np.uint8 and parts.max() < 7
    entry = json.loads((predictions / "predictions.json").read_text())["2008_000001.jpg"]
    assert entry["saliency"] == "2008_000001_saliency.png"
