"""NYUv2 loader: the NYUD-MT and the paper's layout, decoding and every user-facing error."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nddr.data.base import IGNORE_INDEX, TargetSpec
from nddr.data.nyuv2 import CLASS_NAMES, NYUv2, decode_normals_png
from nddr.errors import NddrError

H, W = 6, 8


def image_array(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def save_npy(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)


def nyudmt_seg(seed: int) -> np.ndarray:
    """NYUD-MT encoded labels 0..40 with every corner fixed: 0, 1, 40, 17."""
    seg = np.random.default_rng(seed).integers(0, 41, (H, W), dtype=np.uint8)
    seg[0, 0], seg[0, -1], seg[-1, 0], seg[-1, -1] = 0, 1, 40, 17
    return seg


def nyudmt_normals(seed: int) -> np.ndarray:
    normals = np.random.default_rng(seed).normal(size=(H, W, 3)).astype(np.float32)
    normals[0, 0] = 0.0
    normals[0, 1] = (0.0, 0.0, 2.0)
    return normals


def make_nyudmt(root: Path, train=("0001", "0003", "0004"), test=("0002", "0005")) -> Path:
    for number, name in enumerate([*train, *test]):
        suffix = ".jpg" if number == 0 else ".png"
        save_png(image_array(number), root / "images" / f"{name}{suffix}")
        save_png(nyudmt_seg(number), root / "segmentation" / f"{name}.png")
        save_npy(nyudmt_normals(number), root / "normals" / f"{name}.npy")
        depth = np.random.default_rng(number).uniform(0.5, 9.0, (H, W)).astype(np.float32)
        depth[1, 1] = 0.0
        save_npy(depth, root / "depth" / f"{name}.npy")
    (root / "gt_sets").mkdir(parents=True, exist_ok=True)
    (root / "gt_sets" / "train.txt").write_text("".join(f"{n}\n" for n in train))
    (root / "gt_sets" / "val.txt").write_text("".join(f"{n}\n" for n in test))
    return root


def encode_normals(normals: np.ndarray) -> np.ndarray:
    return np.round((normals + 1) * 255 / 2).astype(np.uint8)


def paper_normals_png(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(H, W, 3))
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    rgb = encode_normals(normals)
    rgb[0, 0] = (255, 255, 255)
    rgb[0, 1] = (255, 128, 0)
    return rgb


def paper_seg(seed: int) -> np.ndarray:
    seg = np.random.default_rng(seed).integers(0, 40, (H, W), dtype=np.uint8)
    seg[0, 0], seg[0, 1] = IGNORE_INDEX, 39
    return seg


def make_paper(root: Path, list_dir: str = "list", train=3, test=2) -> Path:
    lists = root / list_dir
    lists.mkdir(parents=True, exist_ok=True)
    splits = {"training": range(train), "testing": range(train, train + test)}
    for prefix, numbers in splits.items():
        seg_lines, normal_lines = [], []
        for number in numbers:
            save_png(image_array(number), root / "images" / f"{number:04d}.png")
            save_png(paper_seg(number), root / "segmentation" / f"{number:04d}.png")
            save_png(paper_normals_png(number), root / "normals" / f"{number:04d}.png")
            seg_lines.append(f"/images/{number:04d}.png /segmentation/{number:04d}.png\n")
            normal_lines.append(f"images/{number:04d}.png normals/{number:04d}.png\n")
        (lists / f"{prefix}_seg.txt").write_text("".join(seg_lines))
        (lists / f"{prefix}_normal_mask.txt").write_text("".join(normal_lines))
    return root


def test_nyudmt_reads_all_targets_in_list_order(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    train, test = NYUv2(root, "train"), NYUv2(root, "test")
    assert (train.layout, len(train), len(test)) == ("nyudmt", 3, 2)
    assert train.names == ["0001", "0003", "0004"] and test.names == ["0002", "0005"]
    assert train.targets == {
        "segmentation": TargetSpec("segmentation", 40, CLASS_NAMES),
        "normals": TargetSpec("normals"),
        "depth": TargetSpec("depth"),
    }
    sample = train[1]  # 0003, written second (png)
    assert np.array_equal(sample["image"], image_array(1))
    assert set(sample) == {"image", "segmentation", "normals", "depth"}
    assert "0003.png" in train.source(1) and "0003.npy" in train.source(1)


def test_nyudmt_accepts_jpg_images(tmp_path: Path) -> None:
    sample = NYUv2(make_nyudmt(tmp_path))[0]  # 0001.jpg (lossy)
    assert sample["image"].shape == (H, W, 3) and sample["image"].dtype == np.uint8


def test_nyudmt_segmentation_remapping(tmp_path: Path) -> None:
    seg = NYUv2(make_nyudmt(tmp_path))[1]["segmentation"]
    stored = nyudmt_seg(1)
    assert seg.dtype == np.uint8
    assert (seg[0, 0], seg[0, -1], seg[-1, 0], seg[-1, -1]) == (IGNORE_INDEX, 0, 39, 16)
    assert np.array_equal(seg, np.where(stored == 0, 255, stored.astype(int) - 1))


def test_nyudmt_depth_and_normals(tmp_path: Path) -> None:
    sample = NYUv2(make_nyudmt(tmp_path))[1]
    depth = np.load(tmp_path / "depth" / "0003.npy")
    assert sample["depth"].dtype == np.float32 and np.array_equal(sample["depth"], depth)
    normals = sample["normals"]
    assert normals.dtype == np.float32
    assert np.array_equal(normals[0, 0], [0, 0, 0])
    assert np.allclose(normals[0, 1], [0, 0, 1])
    stored = nyudmt_normals(1)[1:]
    expected = stored / np.linalg.norm(stored, axis=2, keepdims=True)
    assert np.allclose(normals[1:], expected, atol=1e-6)


def test_nyudmt_targets_follow_the_folders_and_tasks(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    for file in (root / "depth").iterdir():
        file.unlink()
    (root / "depth").rmdir()
    data = NYUv2(root)
    assert list(data.targets) == ["segmentation", "normals"]
    assert set(data[0]) == {"image", "segmentation", "normals"}
    with pytest.raises(NddrError, match="no depth target: there is no depth/ folder"):
        NYUv2(root, tasks=["depth"])
    with pytest.raises(NddrError, match="has no target 'edges'"):
        NYUv2(root, tasks=["edges"])
    only = NYUv2(root, tasks=["normals"])
    assert list(only.targets) == ["normals"] and set(only[0]) == {"image", "normals"}


def test_nyudmt_selected_tasks_only_need_their_files(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    (root / "normals" / "0004.npy").unlink()
    assert len(NYUv2(root, tasks=["segmentation", "depth"])) == 3
    with pytest.raises(NddrError, match=r"normals.*0004\.npy.*train\.txt:3"):
        NYUv2(root)


def test_nyudmt_overlapping_splits(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path, train=("0001", "0002"), test=("0002", "0003"))
    with pytest.raises(NddrError, match=r"overlap.*'0002'"):
        NYUv2(root, "train")
    with pytest.raises(NddrError, match=r"overlap.*'0002'"):
        NYUv2(root, "test")


def test_nyudmt_missing_image(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    (root / "images" / "0005.png").unlink()
    with pytest.raises(NddrError, match=r"image of '0005'.*val\.txt:2.*not found"):
        NYUv2(root, "test")


def test_nyudmt_missing_split_list(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    (root / "gt_sets" / "val.txt").unlink()
    assert len(NYUv2(root, "train")) == 3
    with pytest.raises(NddrError, match=r"test split list .*val\.txt"):
        NYUv2(root, "test")


def test_nyudmt_malformed_and_repeated_lines(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    (root / "gt_sets" / "train.txt").write_text("0001\n\n0003 0004\n")
    with pytest.raises(NddrError, match=r"train\.txt:3: expected one sample name"):
        NYUv2(root)
    (root / "gt_sets" / "train.txt").write_text("0001\n0003\n0001\n")
    with pytest.raises(NddrError, match=r"train\.txt:3: '0001' is listed twice"):
        NYUv2(root)


def test_nyudmt_bad_label(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    seg = nyudmt_seg(1)
    seg[2, 2] = 41
    save_png(seg, root / "segmentation" / "0003.png")
    data = NYUv2(root)
    with pytest.raises(NddrError, match=r"0003\.png.*label 41"):
        data[1]


def test_nyudmt_nan_depth(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    depth = np.ones((H, W), dtype=np.float32)
    depth[3, 3] = np.nan
    save_npy(depth, root / "depth" / "0003.npy")
    with pytest.raises(NddrError, match=r"0003\.npy.*NaN"):
        NYUv2(root)[1]


def test_nyudmt_non_finite_normals(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    normals = nyudmt_normals(1)
    normals[2, 2, 1] = np.inf
    save_npy(normals, root / "normals" / "0003.npy")
    with pytest.raises(NddrError, match=r"0003\.npy.*infinite"):
        NYUv2(root)[1]


def test_nyudmt_wrong_array_shapes(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    save_npy(np.ones((3, H, W), dtype=np.float32), root / "normals" / "0003.npy")
    with pytest.raises(NddrError, match=r"0003\.npy.*expected float \(H, W, 3\)"):
        NYUv2(root)[1]
    save_npy(np.ones((H, W + 1, 3), dtype=np.float32), root / "normals" / "0003.npy")
    with pytest.raises(
        NddrError, match=r"normals file .*0003\.npy.* is 6x9 but its image .* is 6x8"
    ):
        NYUv2(root)[1]


def test_undecodable_image(tmp_path: Path) -> None:
    root = make_nyudmt(tmp_path)
    (root / "images" / "0003.png").write_bytes(b"not a png")
    with pytest.raises(NddrError, match=r"0003\.png.*cannot be decoded"):
        NYUv2(root)[1]


def test_paper_layout_reads_both_targets(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    train, test = NYUv2(root, "train"), NYUv2(root, "test")
    assert (train.layout, len(train), len(test)) == ("paper", 3, 2)
    assert train.targets == {
        "segmentation": TargetSpec("segmentation", 40, CLASS_NAMES),
        "normals": TargetSpec("normals"),
    }
    assert train.names == ["images/0000.png", "images/0001.png", "images/0002.png"]
    sample = test[0]
    assert np.array_equal(sample["image"], image_array(3))
    assert np.array_equal(sample["segmentation"], paper_seg(3))
    assert sample["normals"].dtype == np.float32


def test_paper_normal_decoding(tmp_path: Path) -> None:
    normals = NYUv2(make_paper(tmp_path))[0]["normals"]
    assert np.array_equal(normals[0, 0], [0, 0, 0])
    expected = np.array([1.0, 2 * 128 / 255 - 1, -1.0])
    assert expected[1] == pytest.approx(0.0039, abs=1e-4)
    assert np.allclose(normals[0, 1], expected / np.linalg.norm(expected), atol=1e-6)
    lengths = np.linalg.norm(normals.reshape(-1, 3)[1:], axis=1)
    assert np.allclose(lengths, 1, atol=1e-5)
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(H, W, 3))
    truth /= np.linalg.norm(truth, axis=2, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(np.sum(normals * truth, axis=2), -1, 1)))
    assert angle.reshape(-1)[2:].max() < 1.0  # 8-bit quantisation


def test_decode_normals_png_zero_length_is_an_error() -> None:
    rgb = np.full((2, 2, 3), 255, dtype=np.uint8)
    assert not decode_normals_png(rgb, "x").any()
    rgb[1, 0] = (128, 127, 128)
    with pytest.raises(NddrError, match=r"where.png.*zero length at row 1, column 0"):
        decode_normals_png(rgb, "where.png")


def test_paper_zero_length_normal_in_a_file(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    rgb = paper_normals_png(1)
    rgb[3, 4] = (127, 128, 128)
    save_png(rgb, root / "normals" / "0001.png")
    with pytest.raises(NddrError, match=r"0001\.png.*zero length at row 3, column 4"):
        NYUv2(root)[1]


def test_paper_bad_label(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    seg = paper_seg(2)
    seg[1, 1] = 40
    save_png(seg, root / "segmentation" / "0002.png")
    with pytest.raises(NddrError, match=r"0002\.png.*label 40"):
        NYUv2(root)[2]


def test_paper_lists_in_root_and_single_list(tmp_path: Path) -> None:
    root = make_paper(tmp_path, list_dir=".")
    (root / "training_normal_mask.txt").unlink()
    train = NYUv2(root, "train")
    assert list(train.targets) == ["segmentation"] and set(train[0]) == {"image", "segmentation"}
    assert list(NYUv2(root, "test").targets) == ["segmentation", "normals"]
    with pytest.raises(NddrError, match=r"no normals target: training_normal_mask\.txt is missing"):
        NYUv2(root, "train", tasks=["normals"])
    with pytest.raises(NddrError, match="no depth target: the paper's layout has segmentation"):
        NYUv2(root, "test", tasks=["depth"])


def test_paper_lists_must_agree(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    path = root / "list" / "training_normal_mask.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))
    with pytest.raises(NddrError, match=r"images/0002\.png.*training_seg\.txt but not in"):
        NYUv2(root)
    assert len(NYUv2(root, tasks=["segmentation"])) == 3


def test_paper_overlapping_splits(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    with open(root / "list" / "testing_seg.txt", "a") as stream:
        stream.write("images/0001.png segmentation/0001.png\n")
    with pytest.raises(NddrError, match=r"overlap.*images/0001\.png"):
        NYUv2(root, "train")


def test_paper_malformed_line(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    with open(root / "list" / "training_seg.txt", "a") as stream:
        stream.write("images/0009.png\n")
    with pytest.raises(NddrError, match=r"training_seg\.txt:4: expected 'image label'"):
        NYUv2(root)


def test_paper_missing_file(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    (root / "normals" / "0004.png").unlink()
    with pytest.raises(NddrError, match=r"0004\.png.*testing_normal_mask\.txt:2 does not exist"):
        NYUv2(root, "test")


def test_paper_missing_split_lists(tmp_path: Path) -> None:
    root = make_paper(tmp_path)
    (root / "list" / "testing_seg.txt").unlink()
    (root / "list" / "testing_normal_mask.txt").unlink()
    with pytest.raises(NddrError, match=r"test split list missing.*testing_seg\.txt"):
        NYUv2(root, "test")


def test_root_and_split_errors(tmp_path: Path) -> None:
    with pytest.raises(NddrError, match=r"NYUv2 root .* is not a directory"):
        NYUv2(tmp_path / "absent")
    with pytest.raises(NddrError, match=r"no NYUv2 layout.*gt_sets.*training_seg\.txt"):
        NYUv2(tmp_path)
    (tmp_path / "gt_sets").mkdir()
    with pytest.raises(NddrError, match="none of the target folders segmentation/"):
        NYUv2(tmp_path)
    make_nyudmt(tmp_path)
    with pytest.raises(NddrError, match="unknown NYUv2 split 'val'"):
        NYUv2(tmp_path, "val")
