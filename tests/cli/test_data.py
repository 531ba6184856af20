"""``nddr data prepare / check / show`` end to end, on small fixtures in the real formats."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from nddr.cli import main
from tests.data.folder.test_dataset import make_folder
from tests.data.test_imdb_wiki import row, write_face, write_mat
from tests.data.test_mtan_npy import write_layout
from tests.data.test_nyuv2 import make_nyudmt
from tests.data.test_nyuv2_prepare import truth, write_labeled, write_mapping, write_splits


def test_check_scenes_prints_counts_histogram_and_invalid_fractions(tmp_path, capsys):
    argv = ["data", "check", "scenes", str(tmp_path), "--set", "num_images=6", "--set", "size=32"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for split in ("train", "test"):
        entry = report["splits"][split]
        assert entry["count"] == entry["checked"] == 6
        assert sum(entry["targets"]["segmentation"]["histogram"]) == 6 * 32 * 32
        assert entry["targets"]["normals"]["invalid_fraction"] == 0
        assert entry["targets"]["depth"]["min"] > 0
        assert entry["problems"] == []
    assert main(argv) == 0
    assert "train: 6 samples" in capsys.readouterr().out


def test_check_reports_bad_samples_and_exits_non_zero(tmp_path, capsys):
    root = make_nyudmt(tmp_path / "nyu")
    segmentation = root / "segmentation" / "0003.png"
    labels = np.asarray(Image.open(segmentation)).copy()
    labels[0, 0] = 77  # outside 0 (void) and 1..40
    Image.fromarray(labels).save(segmentation)
    assert main(["data", "check", "nyuv2", str(root), "--split", "train"]) == 1
    captured = capsys.readouterr()
    assert "0003.png" in captured.out and "77" in captured.out
    assert "1 bad samples" in captured.err


def test_check_of_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["data", "check", "nyuv2", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nddr data: error:") and "nowhere" in err and "\n" not in err
    assert main(["data", "check", "scenes", "--set", "colour=3"]) == 2
    assert "unknown option of dataset 'scenes' 'colour'" in capsys.readouterr().err
    assert main(["data", "check", "nyuv2"]) == 2
    assert "pass the folder" in capsys.readouterr().err


def test_check_of_an_empty_split_is_an_error(tmp_path, capsys):
    root = make_nyudmt(tmp_path / "nyu")
    (root / "gt_sets" / "val.txt").write_text("")
    assert main(["data", "check", "nyuv2", str(root)]) == 2
    assert "nyuv2 split 'test' is empty: it lists no sample" in capsys.readouterr().err


def test_show_writes_a_grid(tmp_path, capsys):
    out = tmp_path / "grid.png"
    argv = ["data", "show", "scenes", str(tmp_path), "--set", "num_images=4", "--set", "size=32"]
    assert main([*argv, "--num", "3", "--out", str(out)]) == 0
    grid = Image.open(out)
    # Three rows of image | segmentation | normals | depth, each enlarged to 128 pixels high.
    assert grid.width >= 4 * 128 and grid.height >= 3 * 128
    assert (
        main(
            [
                "data",
                "show",
                "multidigits",
                str(tmp_path),
                "--set",
                "num_images=4",
                "--out",
                str(out),
            ]
        )
        == 0
    )


def test_help_states_each_actions_default_split(tmp_path, capsys):
    for action, default in (("show", "train"), ("check", "both")):
        with pytest.raises(SystemExit):
            main(["data", action, "--help"])
        assert f"one split (default: {default})" in capsys.readouterr().out
    out = tmp_path / "grid.png"
    argv = ["data", "show", "scenes", str(tmp_path), "--set", "num_images=2", "--set", "size=32"]
    assert main([*argv, "--num", "1", "--out", str(out)]) == 0
    assert "samples of scenes train" in capsys.readouterr().out


def test_prepare_then_check_nyuv2(tmp_path, capsys):
    data = truth()
    labeled = write_labeled(tmp_path / "nyu_depth_v2_labeled.mat", data)
    splits = write_splits(tmp_path / "splits.mat")
    mapping = write_mapping(tmp_path / "classMapping40.mat", data["mapClass"])
    out = tmp_path / "nyuv2"
    argv = ["data", "prepare", "nyuv2", "--labeled", str(labeled), "--splits", str(splits)]
    assert main([*argv, "--mapping", str(mapping), "--out", str(out)]) == 0
    assert "3 train, 2 test" in capsys.readouterr().out
    assert main(["data", "check", "nyuv2", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["count"] == 3 and report["splits"]["test"]["count"] == 2
    assert set(report["splits"]["train"]["targets"]) == {"segmentation", "normals", "depth"}
    assert main([*argv, "--mapping", str(tmp_path / "missing.mat"), "--out", str(out)]) == 2
    assert "missing.mat" in capsys.readouterr().err


def test_check_imdb_wiki_prints_the_filter_counts(tmp_path, capsys):
    rows = [row(subject, path=f"01/{subject}.jpg") for subject in range(4)]
    rows.append(row(9, path="01/9.jpg", second_face_score=2.0))  # two faces: dropped
    write_mat(tmp_path / "imdb.mat", rows)
    for subject in range(4):
        write_face(tmp_path / "01" / f"{subject}.jpg")
    argv = ["data", "check", "imdb_wiki", str(tmp_path), "--set", "eval_subjects=1"]
    assert main([*argv, "--set", "image_size=32"]) == 0
    out = capsys.readouterr().out
    assert "train: 3 samples" in out and "test: 1 samples" in out
    assert "kept 4" in out and "multiple_faces" in out
    assert "male:100.0%" in out


def test_init_writes_a_manifest_that_check_accepts(tmp_path, capsys):
    root = make_folder(tmp_path)
    (root / "dataset.yaml").unlink()
    assert main(["data", "init", str(root)]) == 0
    out = capsys.readouterr().out
    assert "seg: seg/{stem}.png (6 of 6 images)" in out and "segmentation with 3 classes" in out
    assert f"wrote {root / 'dataset.yaml'}" in out
    assert main(["data", "check", "folder", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["count"] + report["splits"]["test"]["count"] == 6
    assert report["splits"]["test"]["targets"]["depth"]["min"] > 0.5
    assert main(["data", "init", str(root)]) == 2
    assert "exists: edit it, or pass --force" in capsys.readouterr().err
    assert main(["data", "init", str(root), "--force"]) == 0
    grid = tmp_path / "grid.png"
    assert main(["data", "show", "folder", str(root), "--num", "2", "--out", str(grid)]) == 0
    assert Image.open(grid).width >= 4 * 128  # image | seg | normals | depth


def test_check_folder_lists_every_bad_sample_with_its_file(tmp_path, capsys):
    root = make_folder(tmp_path)
    (root / "depth" / "0004.png").unlink()
    bad = np.full((6, 8), 5, np.uint8)
    Image.fromarray(bad).save(root / "seg" / "0001.png")
    assert main(["data", "check", "folder", str(root)]) == 1
    captured = capsys.readouterr()
    assert f"depth file {str(root / 'depth' / '0004.png')!r} does not exist" in captured.out
    assert "seg/0001.png' has label 5, outside 0..2" in captured.out
    assert "2 bad samples" in captured.err


def test_check_help_lists_folder_and_the_class_form(capsys):
    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    out = capsys.readouterr().out
    assert "folder" in out and "module:Class" in out
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    catalogue = capsys.readouterr().out
    assert re.search(
        r"\n  folder +your images and targets, described by ROOT/dataset.yaml", catalogue
    )
    assert re.search(r"\n  module:Class +your own MultiTaskDataset subclass", catalogue)


def test_check_of_the_mtan_npy_layouts_lists_them_and_names_bad_files(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    listing = capsys.readouterr().out
    assert "nyuv2_npy" in listing and "cityscapes_npy" in listing
    root = write_layout(tmp_path / "city", "cityscapes_npy", num_classes=19, label_folder="label")
    assert main(["data", "check", "cityscapes_npy", str(root), "--json"]) == 1
    captured = capsys.readouterr()
    problems = json.loads(captured.out)["splits"]["train"]["problems"]
    assert problems and "pass num_classes=19" in problems[0] and "label/0.npy" in problems[0]
    argv = ["data", "check", "cityscapes_npy", str(root), "--set", "num_classes=19", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["test"]["count"] == 2
    assert len(report["splits"]["train"]["targets"]["segmentation"]["histogram"]) == 19
    np.save(root / "val" / "image" / "1.npy", np.zeros((6, 8, 3), np.uint8))
    assert main(["data", "check", "cityscapes_npy", str(root), "--set", "num_classes=19"]) == 1
    assert "val/image/1.npy" in capsys.readouterr().out


def test_check_lists_pascal_context_and_counts_images_without_a_parts_file(tmp_path, capsys):
    from tests.data.test_pascal_context import make_pascal

    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    assert "pascal_context" in capsys.readouterr().out
    root = make_pascal(tmp_path / "PASCAL_MT")
    assert main(["data", "check", "pascal_context", str(root), "--split", "train", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["splits"]["train"]
    assert report["source"] == {"human_parts_without_mat": 1} and report["problems"] == []
    parts = report["targets"]["human_parts"]
    assert parts["invalid_fraction"] == pytest.approx(2 / 3)  # two of three images: no person
    assert report["targets"]["saliency"]["class_names"] == ["background", "salient"]
