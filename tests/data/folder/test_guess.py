"""``nddr data init``'s guess: a folder's contents told apart by dtype, channels and range."""

import numpy as np
import pytest

from nddr.data.folder.dataset import Folder
from nddr.data.folder.guess import guess_manifest
from nddr.data.folder.manifest import dump_manifest
from nddr.data.report import summarise
from nddr.errors import NddrError
from tests.data.folder.test_dataset import (
    H,
    W,
    depth_mm,
    encode_png8,
    labels,
    make_folder,
    save,
    save_rgb16_png,
    unit_normals,
)


def test_the_guess_of_the_fixture_reads_every_sample(tmp_path):
    root = make_folder(tmp_path)
    (root / "dataset.yaml").unlink()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("unrelated")
    guess = guess_manifest(root)
    tasks = guess.manifest.tasks
    assert [tasks[name].kind for name in ("depth", "normals", "seg", "animal")] == [
        "depth",
        "normals",
        "segmentation",
        "classification",
    ]
    assert tasks["seg"].classes == 3 and tasks["seg"].file == "seg/{stem}.png"
    assert tasks["depth"].encoding == "png16" and tasks["depth"].scale == 0.001
    assert tasks["normals"].encoding == "png8" and tasks["normals"].invalid == (0, 0, 0)
    assert tasks["animal"].class_names == ("0", "1", "cat", "dog")  # names and digits mixed
    assert guess.manifest.splits.test_fraction == 0.2 and guess.manifest.table == "labels.csv"
    assert "skipped notes/: no file has an image's stem" in guess.notes
    assert any("seg/{stem}.png (6 of 6 images)" in note for note in guess.notes)
    (root / "dataset.yaml").write_text(dump_manifest(guess.manifest))
    for split in ("train", "test"):
        assert summarise(Folder(root, split))["problems"] == []


def test_npy_and_16_bit_files_and_folder_splits(tmp_path):
    for k, stem in enumerate(["train/a", "train/b", "test/c"]):
        save(np.zeros((H, W, 3), np.uint8), tmp_path / "rgb" / f"{stem}.jpg")
        save(unit_normals(k).astype(np.float32), tmp_path / "normals" / f"{stem}.npy")
        save(depth_mm(k).astype(np.float32) / 1000, tmp_path / "depth" / f"{stem}.npy")
        encoded = np.round((unit_normals(k) + 1) / 2 * 65535).astype(np.uint16)
        save_rgb16_png(encoded, tmp_path / "normals16" / f"{stem}.png")
        save(
            np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8),
            tmp_path / "photos" / f"{stem}.png",
        )
        save(labels(k, classes=5), tmp_path / "labels" / f"{stem}.png")
        save((labels(k, classes=2) % 2 * 255).astype(np.uint8), tmp_path / "masks" / f"{stem}.png")
    (tmp_path / "scores.csv").write_text(
        "stem,score,label\ntrain/a,0.5,1\ntrain/b,1.5,0\ntest/c,2,2\n"
    )
    guess = guess_manifest(tmp_path)
    tasks = guess.manifest.tasks
    assert guess.manifest.images == "rgb"
    assert (tasks["normals"].kind, tasks["normals"].encoding) == ("normals", "npy")
    assert (tasks["depth"].kind, tasks["depth"].encoding, tasks["depth"].scale) == (
        "depth",
        "npy",
        1.0,
    )
    assert (tasks["normals16"].kind, tasks["normals16"].encoding) == ("normals", "png16")
    assert tasks["labels"].classes == 5
    assert tasks["label"].classes == 3 and tasks["score"].kind == "regression"
    assert (tasks["masks"].kind, tasks["masks"].threshold) == ("saliency", 255)
    assert "photos" not in tasks and any(
        note.startswith("skipped photos/: 8-bit RGB, but") for note in guess.notes
    )
    assert (guess.manifest.splits.train, guess.manifest.splits.test) == ("rgb/train", "rgb/test")
    (tmp_path / "dataset.yaml").write_text(dump_manifest(guess.manifest))
    assert Folder(tmp_path, "test").stems == ["test/c"]
    assert summarise(Folder(tmp_path, "train"))["problems"] == []


def test_list_splits_and_the_paper_invalid_colour(tmp_path):
    for k, stem in enumerate(["a", "b"]):
        save(np.zeros((H, W, 3), np.uint8), tmp_path / "images" / f"{stem}.png")
        encoded = encode_png8(unit_normals(k))
        encoded[2, 2] = 255
        save(encoded, tmp_path / "normals" / f"{stem}.png")
    (tmp_path / "train.txt").write_text("a\n")
    (tmp_path / "test.txt").write_text("b\n")
    manifest = guess_manifest(tmp_path).manifest
    assert manifest.tasks["normals"].invalid == (255, 255, 255)
    assert (manifest.splits.train, manifest.splits.test) == ("train.txt", "test.txt")


def test_a_folder_without_images_or_tasks_is_one_line(tmp_path):
    with pytest.raises(NddrError, match=r"no image folder in .*: put the RGB images in"):
        guess_manifest(tmp_path)
    save(np.zeros((H, W, 3), np.uint8), tmp_path / "images" / "a.png")
    with pytest.raises(NddrError, match="no task found in"):
        guess_manifest(tmp_path)
