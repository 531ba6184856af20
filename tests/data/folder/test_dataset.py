"""The ``folder`` dataset on tiny folders written here in the real formats, malformed ones too."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from nddr.data import build_dataset
from nddr.data.base import IGNORE_INDEX
from nddr.data.conventions import ENCODING_SCALE
from nddr.data.folder.dataset import Folder
from nddr.data.report import summarise
from nddr.errors import NddrError

H, W = 6, 8
STEMS = [f"{k:04d}" for k in range(6)]
CLASS_NAMES = ["cat", "dog"]


def unit_normals(seed: int, size=(H, W)) -> np.ndarray:
    normals = np.random.default_rng(seed).normal(size=(*size, 3))
    normals[..., 2] = np.abs(normals[..., 2]) + 0.5  # facing the camera
    return normals / np.linalg.norm(normals, axis=2, keepdims=True)


def labels(seed: int, classes: int = 3, size=(H, W)) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, classes, size, dtype=np.uint8)
    labels[0, 0] = IGNORE_INDEX
    return labels


def depth_mm(seed: int, size=(H, W)) -> np.ndarray:
    depth = np.random.default_rng(seed).integers(500, 9000, size).astype(np.uint16)
    depth[1, 1] = 0
    return depth


def save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array).save(path)
    return path


def save_rgb16_png(array: np.ndarray, path: Path) -> Path:
    """A 16-bit RGB PNG (colour type 2, bit depth 16), which PIL cannot write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width, _ = array.shape
    rows = b"".join(b"\x00" + array[row].astype(">u2").tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def encode_png8(normals: np.ndarray) -> np.ndarray:
    encoded = np.round((normals + 1) * ENCODING_SCALE).astype(np.uint8)
    encoded[2, 2] = (0, 0, 0)  # invalid
    return encoded


MANIFEST = {
    "images": "images",
    "table": "labels.csv",
    "tasks": {
        "segmentation": {"kind": "segmentation", "file": "seg/{stem}.png", "classes": 3},
        "normals": {"kind": "normals", "file": "normals/{stem}.png", "encoding": "png8"},
        "depth": {"kind": "depth", "file": "depth/{stem}.png", "encoding": "png16", "scale": 0.001},
        "animal": {"kind": "classification", "classes": 2, "class_names": CLASS_NAMES},
    },
    "splits": {"test_fraction": 0.34, "seed": 3},
}


def write_manifest(root: Path, manifest: dict) -> Path:
    (root / "dataset.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def make_folder(root: Path, stems=STEMS, manifest=None, size=(H, W)) -> Path:
    """images/, seg/ (3 classes, 255 ignored), normals/ (8-bit PNG), depth/ (16-bit PNG, mm),
    labels.csv (animal as names and as integers) and the dataset.yaml naming them."""
    rng = np.random.default_rng(0)
    for k, stem in enumerate(stems):
        save(rng.integers(0, 256, (*size, 3), dtype=np.uint8), root / "images" / f"{stem}.png")
        save(labels(k, size=size), root / "seg" / f"{stem}.png")
        save(encode_png8(unit_normals(k, size)), root / "normals" / f"{stem}.png")
        save(depth_mm(k, size), root / "depth" / f"{stem}.png")
    rows = [f"{stem},{CLASS_NAMES[k % 2] if k % 3 else k % 2}" for k, stem in enumerate(stems)]
    (root / "labels.csv").write_text("stem,animal\n" + "\n".join(rows) + "\n")
    return write_manifest(root, manifest if manifest is not None else MANIFEST)


def test_samples_follow_the_raw_conventions(tmp_path):
    root = make_folder(tmp_path)
    train, test = (Folder(root, split) for split in ("train", "test"))
    assert len(test) == 2 and len(train) == 4
    assert sorted(train.stems + test.stems) == STEMS
    index = train.stems.index("0001")
    sample = train[index]
    assert sample["image"].shape == (H, W, 3) and sample["image"].dtype == np.uint8
    np.testing.assert_array_equal(sample["segmentation"], labels(1))
    normals = sample["normals"]
    assert normals.dtype == np.float32 and (normals[2, 2] == 0).all()
    valid = np.ones((H, W), bool)
    valid[2, 2] = False
    np.testing.assert_allclose(np.linalg.norm(normals[valid], axis=1), 1, atol=1e-5)
    angle = np.degrees(np.arccos(np.clip((normals * unit_normals(1)).sum(2)[valid], -1, 1)))
    assert angle.max() < 1.0  # 8-bit quantisation only
    np.testing.assert_allclose(sample["depth"], depth_mm(1) / 1000, rtol=1e-6)
    assert sample["depth"][1, 1] == 0
    assert sample["animal"] == 1  # "dog" by name
    assert train[train.stems.index("0003")]["animal"] == 1  # 3 % 2 by integer
    assert train.targets["animal"].class_names == ("cat", "dog")
    assert train.targets["segmentation"].num_classes == 3


def test_build_dataset_names_folder_and_its_options(tmp_path):
    root = make_folder(tmp_path)
    dataset = build_dataset("folder", root, "test", tasks=["depth", "animal"])
    assert list(dataset.targets) == ["depth", "animal"]
    assert set(dataset[0]) == {"image", "depth", "animal"}
    (root / "dataset.yaml").rename(root / "other.yaml")
    assert len(build_dataset("folder", root, "test", manifest="other.yaml")) == 2
    with pytest.raises(NddrError, match="does not exist: write one with `nddr data init"):
        build_dataset("folder", root, "test")


def test_other_encodings_and_stored_conventions(tmp_path):
    manifest = {
        "images": "rgb",
        "tasks": {
            "seg": {"kind": "segmentation", "file": "seg/{stem}.png", "classes": 4, "ignore": 0},
            "normals": {"kind": "normals", "file": "n16/{stem}.png", "encoding": "png16",
                        "invalid": [65535, 65535, 65535]},
            "float_normals": {"kind": "normals", "file": "n/{stem}.npy", "encoding": "npy"},
            "depth": {"kind": "depth", "file": "d/{stem}.npy", "encoding": "npy", "invalid": -1},
            "mask": {"kind": "saliency", "file": "m/{stem}.png", "threshold": 100, "ignore": 7},
            "height": {"kind": "regression", "column": "height_cm"},
        },
        "table": "heights.csv",
        "splits": {"train": "train.txt", "test": "test.txt"},
    }  # fmt: skip
    normals = unit_normals(0)
    encoded = np.round((normals + 1) / 2 * 65535).astype(np.uint16)
    encoded[0, 1] = 65535
    stored_depth = np.full((H, W), 2.5, np.float32)
    stored_depth[3, 3] = -1
    stored_labels = np.array(labels(0), dtype=np.uint8)
    stored_labels[0, 0] = 0
    for stem in ("a/x", "b"):
        save(np.zeros((H, W, 3), np.uint8), tmp_path / "rgb" / f"{stem}.jpg")
        save(stored_labels, tmp_path / "seg" / f"{stem}.png")
        save_rgb16_png(encoded, tmp_path / "n16" / f"{stem}.png")
        save(normals * 3.0, tmp_path / "n" / f"{stem}.npy")
        save(stored_depth, tmp_path / "d" / f"{stem}.npy")
        save(
            np.array([[0, 99, 100, 7, 255, 0, 0, 0]] * H, np.uint8), tmp_path / "m" / f"{stem}.png"
        )
    (tmp_path / "heights.csv").write_text("stem,height_cm\na/x,171.5\nb,-3e2\n")
    (tmp_path / "train.txt").write_text("a/x.jpg\n\n")
    (tmp_path / "test.txt").write_text("b\n")
    sample = Folder(write_manifest(tmp_path, manifest), "train")[0]
    assert sample["seg"][0, 0] == IGNORE_INDEX and (sample["seg"] == 0).sum() == 0
    assert (sample["normals"][0, 1] == 0).all()
    np.testing.assert_allclose(sample["normals"][1:], normals[1:], atol=1e-4)
    np.testing.assert_allclose(sample["float_normals"], normals, atol=1e-6)
    assert sample["depth"][3, 3] == 0 and sample["depth"][0, 0] == 2.5
    assert sample["mask"][0].tolist() == [0, 0, 1, IGNORE_INDEX, 1, 0, 0, 0]
    assert sample["height"] == 171.5 and Folder(tmp_path, "test")[0]["height"] == -300.0
    assert Folder(tmp_path, "test").stems == ["b"]


def _bad_label(root: Path) -> None:
    bad = labels(2)
    bad[1, 2] = 7
    save(bad, root / "seg" / "0002.png")


def _wrong_dtype(root: Path) -> None:
    save(np.ones((H, W), np.uint8) * 9, root / "depth" / "0002.png")


def _wrong_channels(root: Path) -> None:
    save(np.zeros((H, W, 4), np.uint8), root / "normals" / "0002.png")


def _wrong_size(root: Path) -> None:
    save(labels(2)[:, :5], root / "seg" / "0002.png")


def _unreadable(root: Path) -> None:
    (root / "seg" / "0002.png").write_bytes(b"not a png")


def _missing(root: Path) -> None:
    (root / "normals" / "0002.png").unlink()


def _bad_class(root: Path) -> None:
    text = (root / "labels.csv").read_text().replace("0002,cat", "0002,cow")
    (root / "labels.csv").write_text(text)


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (_bad_label, "seg/0002.png' has label 7, outside 0..2 and the ignore value 255"),
        (_wrong_dtype, "depth/0002.png' has mode L: the png16 encoding is one 16-bit channel"),
        (_wrong_channels, "normals/0002.png' has mode RGBA: expected 8-bit RGB"),
        (_wrong_size, "seg/0002.png' is 6x5 but its image"),
        (_unreadable, "seg/0002.png' cannot be decoded"),
        (_missing, "normals file '{root}/normals/0002.png' does not exist"),
        (_bad_class, "labels.csv:4: animal 'cow' is not a class"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:] or None,
)
def test_a_bad_sample_is_named_by_its_file_and_the_others_still_read(tmp_path, damage, fragment):
    root = make_folder(tmp_path)
    damage(root)
    report = {split: summarise(Folder(root, split)) for split in ("train", "test")}
    problems = [line for entry in report.values() for line in entry["problems"]]
    assert len(problems) == 1, problems
    assert fragment.format(root=root) in problems[0] and "\n" not in problems[0]
    assert sum(entry["checked"] for entry in report.values()) == len(STEMS)


def test_a_split_list_naming_a_missing_image_is_a_bad_sample(tmp_path):
    manifest = {**MANIFEST, "splits": {"train": "train.txt", "test": "test.txt"}}
    root = make_folder(tmp_path, manifest=manifest)
    (root / "train.txt").write_text("0000\n0001\n0009\n")
    (root / "test.txt").write_text("0002\n")
    problems = summarise(Folder(root, "train"))["problems"]
    assert len(problems) == 1
    assert f"image '0009' listed in {root / 'train.txt'}:3 does not exist" in problems[0]


def test_a_missing_table_row_and_column(tmp_path):
    root = make_folder(tmp_path)
    (root / "labels.csv").write_text("stem,animal\n0000,cat\n")
    dataset = Folder(root, "train")
    assert len(summarise(dataset)["problems"]) == len(dataset) - ("0000" in dataset.stems)
    (root / "labels.csv").write_text("stem,species\n0000,cat\n")
    with pytest.raises(NddrError, match=r"has no column 'animal' \(it has stem, species\)"):
        Folder(root, "train")
