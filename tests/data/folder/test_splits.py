"""Splits of a folder dataset: lists, folders, and a seeded fraction written once."""

import numpy as np
import pytest

from nddr.data.folder.manifest import Splits
from nddr.data.folder.splits import SPLIT_FOLDER, find_images, fraction_split, split_entries
from nddr.errors import NddrError
from tests.data.folder.test_dataset import save


def _images(root, stems):
    for stem in stems:
        save(np.zeros((2, 2, 3), np.uint8), root / "images" / f"{stem}.png")
    return find_images(root / "images")


def _stems(root, images, splits, split):
    return [stem for stem, _ in split_entries(root, root / "images", images, splits, split)]


def test_a_fraction_split_is_written_once_and_read_back_whatever_the_seed(tmp_path):
    images = _images(tmp_path, [f"{k:02d}" for k in range(10)])
    first = {
        s: _stems(tmp_path, images, Splits(test_fraction=0.3, seed=1), s) for s in ("train", "test")
    }
    assert len(first["test"]) == 3 and sorted(first["train"] + first["test"]) == sorted(images)
    assert (tmp_path / SPLIT_FOLDER / "test.txt").read_text().split() == first["test"]
    again = {s: _stems(tmp_path, images, Splits(test_fraction=0.5, seed=7), s) for s in first}
    assert again == first
    fresh = tmp_path / "fresh"
    other = {
        s: _stems(fresh, _images(fresh, sorted(images)), Splits(test_fraction=0.3, seed=7), s)
        for s in first
    }
    assert other["test"] != first["test"]  # the seed chose the written lists


def test_a_changed_image_set_is_reported_not_re_split(tmp_path):
    images = _images(tmp_path, ["a", "b", "c", "d"])
    lists = fraction_split(tmp_path, images, 0.25, 0)
    before = {name: path.read_text() for name, path in lists.items()}
    grown = _images(tmp_path, ["e"])
    with pytest.raises(NddrError, match=r"changed since .*\(1 new, e.g. 'e'\): delete splits/"):
        fraction_split(tmp_path, grown, 0.25, 0)
    (tmp_path / "images" / "e.png").unlink()
    (tmp_path / "images" / "a.png").unlink()
    with pytest.raises(NddrError, match=r"1 gone, e.g. 'a'"):
        fraction_split(tmp_path, find_images(tmp_path / "images"), 0.25, 0)
    assert {name: path.read_text() for name, path in lists.items()} == before
    lists["test"].unlink()
    with pytest.raises(NddrError, match=r"exists without .*test.txt"):
        fraction_split(tmp_path, images, 0.25, 0)


def test_a_fraction_split_keeps_both_splits_non_empty(tmp_path):
    images = _images(tmp_path, ["a", "b"])
    assert [
        len(path.read_text().split()) for path in fraction_split(tmp_path, images, 0.01, 0).values()
    ] == [1, 1]
    with pytest.raises(NddrError, match="needs at least 2 images, found 1"):
        fraction_split(tmp_path / "one", _images(tmp_path / "one", ["a"]), 0.5, 0)


def test_folder_splits_take_the_images_below_each_folder(tmp_path):
    images = _images(tmp_path, ["train/a", "train/b", "test/c"])
    splits = Splits(train="images/train", test="images/test")
    assert _stems(tmp_path, images, splits, "train") == ["train/a", "train/b"]
    assert _stems(tmp_path, images, splits, "test") == ["test/c"]
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(NddrError, match="is not below the image folder"):
        _stems(tmp_path, images, Splits(train="elsewhere", test="images/test"), "train")
    with pytest.raises(NddrError, match=r"train split .*nowhere' does not exist"):
        _stems(tmp_path, images, Splits(train="nowhere", test="images/test"), "train")


def test_bad_lists_are_one_line_errors(tmp_path):
    images = _images(tmp_path, ["a", "b"])
    (tmp_path / "train.txt").write_text("a\nb\n")
    (tmp_path / "test.txt").write_text("b\n")
    splits = Splits(train="train.txt", test="test.txt")
    with pytest.raises(NddrError, match=r"splits overlap: 'b' is in train \(.*train.txt:2\)"):
        _stems(tmp_path, images, splits, "test")
    (tmp_path / "train.txt").write_text("a\na\n")
    with pytest.raises(NddrError, match=r"train.txt:2: 'a' is listed twice \(first on line 1\)"):
        _stems(tmp_path, images, splits, "train")


def test_two_images_with_one_stem_are_an_error(tmp_path):
    _images(tmp_path, ["a"])
    save(np.zeros((2, 2, 3), np.uint8), tmp_path / "images" / "a.jpg")
    save(np.zeros((2, 2, 3), np.uint8), tmp_path / "images" / ".hidden" / "b.png")
    with pytest.raises(NddrError, match="have one stem 'a': keep one of them"):
        find_images(tmp_path / "images")
    (tmp_path / "images" / "a.jpg").unlink()
    assert list(find_images(tmp_path / "images")) == ["a"]
