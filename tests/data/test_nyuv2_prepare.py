"""prepare_nyuv2 on small fakes of the official files, in their real on-disk layouts."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from nddr.data.normals_from_depth import normals_from_depth
from nddr.data.nyuv2 import NYUv2
from nddr.data.nyuv2_prepare import load_mat_vars, prepare_nyuv2
from nddr.errors import NddrError

N, H, W = 6, 8, 10  # non-square: a wrong transpose changes the shape


M = 50  # classes of the fake label set (894 in NYUv2)


TRAIN = [2, 5, 1]  # 1-based, deliberately unsorted; image 4 is in neither split


TEST = [6, 3]


def truth() -> dict[str, np.ndarray]:
    """The fake dataset as MATLAB shows it: images (N, H, W, 3), labels and depths (N, H, W)."""
    rng = np.random.default_rng(0)
    n, y, x, c = np.meshgrid(np.arange(N), np.arange(H), np.arange(W), np.arange(3), indexing="ij")
    images = ((n * 41 + y * 29 + x * 7 + c * 3) % 256).astype(np.uint8)
    labels = rng.integers(0, M + 1, (N, H, W)).astype(np.uint16)
    labels[:, 0, 0] = 0
    labels[:, 0, 1] = M
    depths = rng.uniform(1.0, 4.0, (N, H, W)).astype(np.float32)
    depths[:, 4, 5] = 0.0
    mapping = rng.integers(1, 41, M)
    mapping[0], mapping[-1] = 1, 40
    return {"images": images, "labels": labels, "depths": depths, "mapClass": mapping}


def write_labeled(path: Path, data: dict[str, np.ndarray], skip: str = "") -> Path:
    """An HDF5 file laid out like MATLAB v7.3: every array stored with its dimensions reversed."""
    with h5py.File(path, "w") as handle:
        if skip != "images":
            handle["images"] = np.transpose(data["images"], (0, 3, 2, 1))  # (N, 3, W, H)
        for name in ("labels", "depths"):
            if name != skip:
                handle[name] = np.transpose(data[name], (0, 2, 1))  # (N, W, H)
        handle["names"] = np.zeros((1, 3))
    return path


def write_splits(path: Path, train=TRAIN, test=TEST) -> Path:
    column = lambda values: np.asarray(values, dtype=np.float64).reshape(-1, 1)  # noqa: E731
    scipy.io.savemat(path, {"trainNdxs": column(train), "testNdxs": column(test)})
    return path


def write_mapping(path: Path, mapping: np.ndarray) -> Path:
    scipy.io.savemat(path, {"mapClass": np.asarray(mapping, dtype=np.float64).reshape(1, -1)})
    return path


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    data = truth()
    return {
        "labeled": write_labeled(tmp_path / "nyu_depth_v2_labeled.mat", data),
        "splits": write_splits(tmp_path / "splits.mat"),
        "mapping": write_mapping(tmp_path / "classMapping40.mat", data["mapClass"]),
    }


def prepare(sources: dict[str, Path], out: Path, **kwargs) -> dict[str, int]:
    return prepare_nyuv2(sources["labeled"], sources["splits"], sources["mapping"], out, **kwargs)


def test_counts_layout_and_split_files(sources: dict[str, Path], tmp_path: Path) -> None:
    calls = []
    out = tmp_path / "out"
    counts = prepare(sources, out, progress=lambda done, total: calls.append((done, total)))
    assert counts == {"train": 3, "val": 2, "images": 5, "normals_from_depth": 5}
    assert calls == [(k, 5) for k in range(1, 6)]
    assert (out / "gt_sets" / "train.txt").read_text().split() == ["0002", "0005", "0001"]
    assert (out / "gt_sets" / "val.txt").read_text().split() == ["0006", "0003"]
    names = sorted(path.stem for path in (out / "images").iterdir())
    assert names == ["0001", "0002", "0003", "0005", "0006"]
    for folder, suffix in [("images", ".png"), ("segmentation", ".png"), ("depth", ".npy")]:
        assert sorted(p.name for p in (out / folder).iterdir()) == [n + suffix for n in names]


def test_files_dtypes_shapes_and_values(sources: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare(sources, out)
    data = truth()
    for index in [*TRAIN, *TEST]:
        name = f"{index:04d}"
        with Image.open(out / "images" / f"{name}.png") as image:
            assert image.mode == "RGB"
            assert np.array_equal(np.asarray(image), data["images"][index - 1])
        with Image.open(out / "segmentation" / f"{name}.png") as seg:
            assert seg.mode == "L"
            seg = np.asarray(seg)
        label = data["labels"][index - 1]
        expected = np.where(label == 0, 0, data["mapClass"][np.maximum(label, 1) - 1])
        assert seg.shape == (H, W) and np.array_equal(seg, expected)
        depth = np.load(out / "depth" / f"{name}.npy")
        assert depth.dtype == np.float32 and np.array_equal(depth, data["depths"][index - 1])
        normals = np.load(out / "normals" / f"{name}.npy")
        assert normals.dtype == np.float32 and normals.shape == (H, W, 3)
        assert np.array_equal(normals, normals_from_depth(depth))
        for row, col in [(4, 5), (3, 5), (5, 5), (4, 4), (4, 6)]:  # depth 0 at (4, 5)
            assert not normals[row, col].any()
        lengths = np.linalg.norm(normals[1:-1, 1:-1], axis=2)
        assert ((np.abs(lengths - 1) < 1e-5) | (lengths == 0)).all()
        assert (lengths > 0).sum() == (H - 2) * (W - 2) - 5


def test_output_reads_back_with_nyuv2(sources: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare(sources, out)
    data = truth()
    train, test = NYUv2(out, "train"), NYUv2(out, "test")
    assert (train.layout, len(train), len(test)) == ("nyudmt", 3, 2)
    assert list(train.targets) == ["segmentation", "normals", "depth"]
    for dataset, indices in ((train, TRAIN), (test, TEST)):
        for k, index in enumerate(indices):
            sample = dataset[k]  # checked against the raw conventions
            assert np.array_equal(sample["image"], data["images"][index - 1])
            label = data["labels"][index - 1]
            expected = np.where(label == 0, 255, data["mapClass"][np.maximum(label, 1) - 1] - 1)
            assert np.array_equal(sample["segmentation"], expected)
            assert sample["segmentation"][0, 0] == 255
            assert sample["segmentation"][0, 1] == data["mapClass"][M - 1] - 1 == 39
            assert np.array_equal(sample["depth"], data["depths"][index - 1])


def test_rerun_overwrites_cleanly(sources: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepare(sources, out)
    (out / "depth" / "0002.npy").write_bytes(b"garbage")
    write_splits(sources["splits"], train=[1, 2], test=[3])
    assert prepare(sources, out)["images"] == 3
    assert (out / "gt_sets" / "train.txt").read_text() == "0001\n0002\n"
    assert (out / "gt_sets" / "val.txt").read_text() == "0003\n"
    assert len(NYUv2(out, "train")) == 2 and NYUv2(out, "train")[1]["depth"].shape == (H, W)
    leftovers = [p for p in out.rglob(".*")]
    assert leftovers == []


def test_ground_truth_normals_folder(sources: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "normals"
    folder.mkdir()
    rng = np.random.default_rng(3)
    stored = {}
    for index in [*TRAIN, *TEST]:
        vectors = rng.normal(size=(H, W, 3))
        vectors[0, 0] = (0, 0, 1)
        stored[index] = vectors
        if index % 2:
            vectors[0, 0] = 0  # invalid
            np.save(folder / f"{index:04d}.npy", vectors.astype(np.float32))
        else:
            rgb = np.round((vectors / np.linalg.norm(vectors, axis=2, keepdims=True) + 1) * 127.5)
            rgb = rgb.astype(np.uint8)
            rgb[0, 0] = 255  # invalid
            Image.fromarray(rgb).save(folder / f"{index}.png")  # unpadded 1-based index
    out = tmp_path / "out"
    counts = prepare(sources, out, normals=folder)
    assert counts["normals_from_depth"] == 0
    for index, vectors in stored.items():
        normals = np.load(out / "normals" / f"{index:04d}.npy")
        assert not normals[0, 0].any()
        unit = vectors[1:] / np.linalg.norm(vectors[1:], axis=2, keepdims=True)
        cosine = np.sum(normals[1:] * unit, axis=2)
        assert cosine.min() > np.cos(np.radians(1.0))


def test_ground_truth_normals_missing_or_wrong_size(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "normals"
    folder.mkdir()
    with pytest.raises(NddrError, match=r"no ground-truth normals for image 2 .*0002\.npy.*2\.png"):
        prepare(sources, tmp_path / "out", normals=folder)
    for index in [*TRAIN, *TEST]:
        np.save(folder / f"{index:04d}.npy", np.ones((W, H, 3), dtype=np.float32))
    with pytest.raises(NddrError, match=r"0002\.npy.* is 10x8 but image 2 is 8x10"):
        prepare(sources, tmp_path / "out", normals=folder)
    with pytest.raises(NddrError, match="normals folder"):
        prepare(sources, tmp_path / "out", normals=tmp_path / "absent")


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        ([1, 2, 3], [3, 4], r"share 1 indices \(e\.g\. 3\)"),
        ([1, 7], [3], r"trainNdxs has index 7 outside 1\.\.6"),
        ([0, 1], [3], r"trainNdxs has index 0 outside 1\.\.6"),
        ([1], [3, 3], r"testNdxs lists index 3 more than once"),
        ([1.5], [3], r"non-integer"),
    ],
)
def test_bad_splits(
    sources: dict[str, Path], tmp_path: Path, train: list, test: list, message: str
) -> None:
    write_splits(sources["splits"], train, test)
    with pytest.raises(NddrError, match=message):
        prepare(sources, tmp_path / "out")


def test_missing_split_variable(sources: dict[str, Path], tmp_path: Path) -> None:
    scipy.io.savemat(sources["splits"], {"trainNdxs": np.ones((2, 1))})
    with pytest.raises(NddrError, match=r"no variable 'testNdxs' \(it has trainNdxs\)"):
        prepare(sources, tmp_path / "out")


def test_mapping_out_of_range_or_too_short(sources: dict[str, Path], tmp_path: Path) -> None:
    mapping = truth()["mapClass"]
    for value in (41, 0):
        bad = mapping.copy()
        bad[7] = value
        write_mapping(sources["mapping"], bad)
        with pytest.raises(NddrError, match=rf"maps class 8 to {value}, outside 1\.\.40"):
            prepare(sources, tmp_path / "out")
    write_mapping(sources["mapping"], mapping[:-1])
    with pytest.raises(NddrError, match=rf"label {M} but mapClass covers 1\.\.{M - 1}"):
        prepare(sources, tmp_path / "out")


def test_labeled_file_not_hdf5(sources: dict[str, Path], tmp_path: Path) -> None:
    sources["labeled"] = sources["splits"]  # a MATLAB v5 file
    with pytest.raises(NddrError, match=r"not an HDF5 \(MATLAB v7\.3\) file.*nyu_depth_v2_labeled"):
        prepare(sources, tmp_path / "out")


@pytest.mark.parametrize("missing", ["images", "depths"])
def test_labeled_file_missing_dataset(
    sources: dict[str, Path], tmp_path: Path, missing: str
) -> None:
    write_labeled(sources["labeled"], truth(), skip=missing)
    with pytest.raises(NddrError, match=rf"has no dataset '{missing}'"):
        prepare(sources, tmp_path / "out")


def test_labeled_file_wrong_shapes(sources: dict[str, Path], tmp_path: Path) -> None:
    data = truth()
    with h5py.File(sources["labeled"], "r+") as handle:
        del handle["labels"]
        handle["labels"] = data["labels"]  # (N, H, W): not transposed like 'images'
    with pytest.raises(NddrError, match=r"'labels' has shape \(6, 8, 10\), expected \(6, 10, 8\)"):
        prepare(sources, tmp_path / "out")
    with h5py.File(sources["labeled"], "r+") as handle:
        del handle["images"]
        handle["images"] = data["images"]  # (N, H, W, 3)
    with pytest.raises(
        NddrError, match=r"'images' has shape \(6, 8, 10, 3\), expected \(N, 3, W, H\)"
    ):
        prepare(sources, tmp_path / "out")


def test_missing_and_unreadable_inputs(sources: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(NddrError, match=r"labelled file .* does not exist.*v7\.3"):
        prepare({**sources, "labeled": tmp_path / "absent.mat"}, tmp_path / "out")
    with pytest.raises(NddrError, match=r"splits file .* does not exist"):
        prepare({**sources, "splits": tmp_path / "absent.mat"}, tmp_path / "out")
    (tmp_path / "junk.mat").write_bytes(b"this is not a mat file at all" * 10)
    with pytest.raises(NddrError, match=r"not a readable MATLAB \.mat file.*classMapping40\.mat"):
        prepare({**sources, "mapping": tmp_path / "junk.mat"}, tmp_path / "out")


def test_v73_splits_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "splits73.mat"
    with h5py.File(path, "w") as handle:
        handle["trainNdxs"] = np.array([[1.0, 2.0, 5.0]])  # MATLAB 3x1, stored reversed
    values = load_mat_vars(path, ["trainNdxs"], "splits.mat")["trainNdxs"]
    assert values.shape == (3, 1) and values.ravel().tolist() == [1, 2, 5]
    with pytest.raises(NddrError, match="no variable 'testNdxs'"):
        load_mat_vars(path, ["trainNdxs", "testNdxs"], "splits.mat")
