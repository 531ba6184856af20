"""MTAN / LibMTL .npy layout: NYUv2 and Cityscapes readers, conversions and every malformed file."""

from pathlib import Path

import numpy as np
import pytest

from nddr.data import build_dataset
from nddr.data.base import IGNORE_INDEX
from nddr.data.mtan_npy import CITYSCAPES_CLASSES, NYUV2_CLASSES, CityscapesNpy, NYUv2Npy
from nddr.errors import NddrError

H, W = 6, 8

TARGET_FOLDERS = {"nyuv2_npy": ("depth", "normal"), "cityscapes_npy": ("depth",)}
LABEL_FOLDERS = {"nyuv2_npy": "label", "cityscapes_npy": "label_7"}


def stored_sample(seed: int, num_classes: int = 13, size: tuple[int, int] = (H, W)) -> dict:
    """One sample as the layout stores it: float image in [0, 1], labels with -1, depth HxWx1."""
    rng = np.random.default_rng(seed)
    height, width = size
    image = rng.uniform(0.0, 1.0, (height, width, 3)).astype(np.float32)
    image[0, 0] = (0.0, 1.0, 0.5)
    label = rng.integers(-1, num_classes, (height, width)).astype(np.float32)
    label[0, 0], label[0, 1] = -1, num_classes - 1
    depth = rng.uniform(0.5, 9.0, (height, width, 1)).astype(np.float32)
    depth[1, 1] = 0.0
    normal = rng.normal(size=(height, width, 3))
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    normal = normal.astype(np.float32)
    normal[0, 0] = 0.0
    return {"image": image, "label": label, "depth": depth, "normal": normal}


def write_layout(
    root: Path,
    dataset: str = "nyuv2_npy",
    train: int = 3,
    test: int = 2,
    size: tuple[int, int] = (H, W),
    num_classes: int | None = None,
    label_folder: str | None = None,
) -> Path:
    """``root/{train,val}/{image,...}/{i}.npy`` in the dataset's folders, as MTAN writes them."""
    folders = (label_folder or LABEL_FOLDERS[dataset], *TARGET_FOLDERS[dataset])
    classes = num_classes or (13 if dataset == "nyuv2_npy" else 7)
    seed = 0
    for split, count in (("train", train), ("val", test)):
        for index in range(count):
            stored = stored_sample(seed, classes, size)
            seed += 1
            for folder in ("image", *folders):
                path = root / split / folder / f"{index}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, stored[folder.split("_")[0]])
    return root


def test_nyuv2_reads_and_converts_to_raw_conventions(tmp_path):
    root = write_layout(tmp_path)
    dataset = build_dataset("nyuv2_npy", root, "train")
    assert isinstance(dataset, NYUv2Npy)
    assert len(dataset) == 3
    assert list(dataset.targets) == ["segmentation", "depth", "normals"]
    assert dataset.targets["segmentation"].num_classes == 13
    assert dataset.targets["segmentation"].class_names == NYUV2_CLASSES
    stored = stored_sample(0)
    sample = dataset[0]
    assert sample["image"].dtype == np.uint8
    assert tuple(sample["image"][0, 0]) == (0, 255, 128)
    np.testing.assert_array_equal(sample["image"], np.rint(stored["image"] * 255))
    labels = sample["segmentation"]
    assert labels.dtype == np.uint8 and labels[0, 0] == IGNORE_INDEX and labels[0, 1] == 12
    np.testing.assert_array_equal(labels == IGNORE_INDEX, stored["label"] == -1)
    assert sample["depth"].shape == (H, W) and sample["depth"].dtype == np.float32
    assert sample["depth"][1, 1] == 0.0
    np.testing.assert_allclose(sample["normals"], stored["normal"], atol=1e-6)
    assert not sample["normals"][0, 0].any()


def test_test_split_reads_val_folder(tmp_path):
    root = write_layout(tmp_path, train=3, test=2)
    test = build_dataset("nyuv2_npy", root, "test")
    assert len(test) == 2
    assert "/val/image/1.npy" in test.source(1)


def test_targets_follow_folders_and_tasks(tmp_path):
    root = write_layout(tmp_path)
    for split in ("train", "val"):
        for file in (root / split / "normal").iterdir():
            file.unlink()
        (root / split / "normal").rmdir()
    dataset = NYUv2Npy(root, "train")
    assert list(dataset.targets) == ["segmentation", "depth"]
    with pytest.raises(NddrError, match=r"no normal/ for the normals target"):
        NYUv2Npy(root, "train", tasks=["normals"])
    only_depth = NYUv2Npy(root, "train", tasks=["depth"])
    assert set(only_depth[0]) == {"image", "depth"}


def test_cityscapes_7_and_19_classes(tmp_path):
    root = write_layout(tmp_path / "seven", "cityscapes_npy")
    dataset = build_dataset("cityscapes_npy", root, "train")
    assert isinstance(dataset, CityscapesNpy)
    assert list(dataset.targets) == ["segmentation", "depth"]
    assert dataset.targets["segmentation"].class_names == CITYSCAPES_CLASSES[7]
    assert dataset[0]["segmentation"][0, 1] == 6

    nineteen = write_layout(tmp_path / "nineteen", "cityscapes_npy", num_classes=19)
    for split in ("train", "val"):
        (nineteen / split / "label_7").rename(nineteen / split / "label_19")
    dataset = build_dataset("cityscapes_npy", nineteen, "train", num_classes=19)
    assert dataset.targets["segmentation"].class_names == CITYSCAPES_CLASSES[19]
    assert "/train/label_19/0.npy" in dataset.source(0)
    assert dataset[0]["segmentation"][0, 1] == 18


def test_cityscapes_plain_label_folder_is_checked_against_class_count(tmp_path):
    root = write_layout(tmp_path, "cityscapes_npy", num_classes=19, label_folder="label")
    assert "/train/label/0.npy" in CityscapesNpy(root, "train").source(0)
    with pytest.raises(NddrError, match=r"label 18 outside 0..6 .*pass num_classes=19"):
        CityscapesNpy(root, "train")[0]
    assert CityscapesNpy(root, "train", num_classes=19)[0]["segmentation"][0, 1] == 18


def test_cityscapes_rejects_other_class_counts(tmp_path):
    root = write_layout(tmp_path, "cityscapes_npy")
    with pytest.raises(NddrError, match=r"num_classes = 13 is not valid: use 7 or 19"):
        build_dataset("cityscapes_npy", root, "train", num_classes=13)
    with pytest.raises(NddrError, match=r"option of dataset 'nyuv2_npy'|takes no options"):
        build_dataset("nyuv2_npy", root, "train", num_classes=13)


def _overwrite(root: Path, relative: str, array: np.ndarray) -> Path:
    path = root / relative
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    ("relative", "array", "fragment"),
    [
        ("train/label/1.npy", np.full((H, W), 13.0, np.float32), r"label 13 outside 0..12"),
        ("train/label/1.npy", np.full((H, W), -2, np.int64), r"label -2 outside 0..12"),
        ("train/label/1.npy", np.full((H, W), 0.5, np.float32), r"non-integer labels"),
        ("train/label/1.npy", np.zeros((H, W, 2), np.float32), r"expected \(H, W\) class"),
        ("train/image/1.npy", np.zeros((H, W, 3), np.uint8), r"holds uint8 .*expected float"),
        ("train/image/1.npy", np.zeros((H, W, 4), np.float32), r"expected float \(H, W, 3\)"),
        ("train/image/1.npy", np.full((H, W, 3), 200.0, np.float32), r"divided by 255"),
        ("train/depth/1.npy", np.zeros((H, W, 2), np.float32), r"expected float \(H, W\)"),
        ("train/depth/1.npy", np.full((H, W, 1), np.nan, np.float32), r"NaN depth"),
        ("train/normal/1.npy", np.zeros((H, W, 2), np.float32), r"expected float \(H, W, 3\)"),
        ("train/normal/1.npy", np.full((H, W, 3), 128.0, np.float32), r"beyond \[-1, 1\]"),
        ("train/depth/1.npy", np.zeros((H + 1, W, 1), np.float32), r"is 7x8 but its image"),
    ],
)
def test_malformed_files_name_the_file(tmp_path, relative, array, fragment):
    root = write_layout(tmp_path)
    path = _overwrite(root, relative, array)
    dataset = NYUv2Npy(root, "train")
    dataset[0]
    with pytest.raises(NddrError, match=fragment) as error:
        dataset[1]
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_task_file_is_named_at_construction(tmp_path):
    root = write_layout(tmp_path)
    (root / "train" / "depth" / "2.npy").unlink()
    with pytest.raises(NddrError, match=r"depth file .*train/depth/2.npy' .* does not exist"):
        NYUv2Npy(root, "train")
    assert len(NYUv2Npy(root, "train", tasks=["segmentation", "normals"])) == 3


def test_gap_in_numbering_names_the_missing_image(tmp_path):
    root = write_layout(tmp_path)
    (root / "train" / "image" / "1.npy").unlink()
    with pytest.raises(NddrError, match=r"image .*train/image/1.npy' is missing.*up to 2.npy"):
        NYUv2Npy(root, "train")


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda root: (root / "train" / "image" / "x1.npy").write_bytes(b""), r"not named"),
        (lambda root: (root / "train" / "image" / "0.npy").write_bytes(b"no"), r"not a readable"),
        (lambda root: [p.unlink() for p in (root / "train" / "image").iterdir()], r"no .npy"),
    ],
)
def test_bad_image_folder(tmp_path, setup, fragment):
    root = write_layout(tmp_path)
    setup(root)
    with pytest.raises(NddrError, match=fragment):
        NYUv2Npy(root, "train")[0]


def test_missing_root_and_split_folders(tmp_path):
    with pytest.raises(NddrError, match=r"nyuv2_npy root .* is not a directory"):
        NYUv2Npy(tmp_path / "absent", "train")
    (tmp_path / "train").mkdir()
    with pytest.raises(NddrError, match=r"test split folder .*val' is not a directory"):
        NYUv2Npy(tmp_path, "test")
    with pytest.raises(NddrError, match=r"has none of label/, depth/, normal/"):
        NYUv2Npy(tmp_path, "train")
    with pytest.raises(NddrError, match=r"split"):
        NYUv2Npy(tmp_path, "val")
