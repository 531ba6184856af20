"""Conversion of the official NYUv2 files into the NYUD-MT layout that :class:`NYUv2` reads.

The paper (§4) uses the 1449 densely labelled NYUv2 images with the standard 795 / 654
train / test split and the 40-class mapping of Gupta et al. (2013). The official sources are

* ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5, 2.8 GB): ``images``, ``labels``
  (0 = unlabelled, 1..894) and ``depths`` (in-painted, metres), stored column-major so that h5py
  sees ``images`` as (N, 3, W, H) and ``labels`` / ``depths`` as (N, W, H);
* ``splits.mat`` (MATLAB v5): ``trainNdxs`` and ``testNdxs``, 1-based indices into the N images;
* ``classMapping40.mat`` (MATLAB v5): ``mapClass`` (1 x 894), class 1..894 -> 1..40.

:func:`prepare_nyuv2` writes, for every image of the two splits, named by its 1-based index
zero-padded to four digits (``0001`` .. ``1449``)::

    out/images/{name}.png           RGB, lossless
    out/segmentation/{name}.png     uint8, 0 = void, 1..40 = mapClass (NYUD-MT encoding)
    out/depth/{name}.npy            float32 (H, W) metres, 0 = invalid
    out/normals/{name}.npy          float32 (H, W, 3) unit, (0, 0, 0) = invalid
    out/gt_sets/train.txt           the trainNdxs names, in their order
    out/gt_sets/val.txt             the testNdxs names (the "test" split of NYUv2)

Normals come from a folder of ground-truth files when given (:data:`NORMALS_NAMING`), else
they are computed from the depth by :func:`nddr.data.normals_from_depth.normals_from_depth`.
Every file is written atomically, so an interrupted run leaves no half-written file and a rerun
overwrites the previous output cleanly; ``gt_sets/`` is removed first and written last, so a
folder without it has not been completely converted.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nddr.data.files import require_dir, require_file, write_npy, write_png
from nddr.data.normals_from_depth import normals_from_depth
from nddr.data.nyuv2 import NUM_CLASSES, read_normals_npy, read_paper_normals
from nddr.errors import NddrError
from nddr.io import PathLike, atomic_write

NORMALS_NAMING = (
    "{name}.npy | {name}.png with name the 1-based index zero-padded to 4 digits (0001), "
    "or {index}.npy | {index}.png with the unpadded 1-based index (1)"
)
"""File names accepted in the ``normals`` folder for image ``index`` (1-based): ``.npy`` holds
float (H, W, 3) vectors (normalised; zero length = invalid), ``.png`` the paper's uint8 encoding
``v = 255 (n + 1) / 2`` with (255, 255, 255) = invalid."""

LABELED_HINT = "pass nyu_depth_v2_labeled.mat, the MATLAB v7.3 (HDF5) file of the labelled dataset"


def prepare_nyuv2(
    labeled: PathLike,
    splits: PathLike,
    mapping: PathLike,
    out: PathLike,
    normals: PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Convert the official NYUv2 files into the NYUD-MT layout in ``out`` (module docstring).

    ``normals`` is an optional folder of ground-truth normals (:data:`NORMALS_NAMING`);
    ``progress(done, total)`` is called after each image. Returns the counts ``train``,
    ``val`` and ``images`` (written), and ``normals_from_depth`` (images whose normals were
    computed from depth).
    """
    labeled = require_file(labeled, "NYUv2 labelled file", LABELED_HINT)
    splits = require_file(splits, "NYUv2 splits file", "pass splits.mat (trainNdxs, testNdxs)")
    mapping = require_file(
        mapping, "NYUv2 class mapping file", "pass classMapping40.mat (mapClass)"
    )
    normals_dir = (
        require_dir(normals, "NYUv2 normals folder", "pass the folder of ground-truth normals")
        if normals is not None
        else None
    )
    out = Path(out)

    split_vars = load_mat_vars(splits, ["trainNdxs", "testNdxs"], "splits.mat")
    map_class = _read_mapping(
        load_mat_vars(mapping, ["mapClass"], "classMapping40.mat")["mapClass"], mapping
    )

    h5py = _import("h5py")
    if not h5py.is_hdf5(labeled):
        raise NddrError(f"{str(labeled)!r} is not an HDF5 (MATLAB v7.3) file: {LABELED_HINT}")
    try:
        handle = h5py.File(labeled, "r")
    except OSError as error:
        raise NddrError(
            f"{str(labeled)!r} cannot be opened as HDF5 ({error}): {LABELED_HINT}"
        ) from None
    with handle:
        images, labels, depths = _datasets(handle, labeled)
        count = images.shape[0]
        train = _read_indices(split_vars["trainNdxs"], "trainNdxs", splits, count)
        test = _read_indices(split_vars["testNdxs"], "testNdxs", splits, count)
        overlap = np.intersect1d(train, test)
        if overlap.size:
            raise NddrError(
                f"{splits}: trainNdxs and testNdxs share {overlap.size} indices (e.g. "
                f"{int(overlap[0])}); the splits must be disjoint"
            )
        width = max(4, len(str(count)))
        order = [*train.tolist(), *test.tolist()]
        gt_sets = out / "gt_sets"
        for file in ("train.txt", "val.txt"):
            (gt_sets / file).unlink(missing_ok=True)
        computed = 0
        for done, index in enumerate(order, start=1):
            name = f"{index:0{width}d}"
            image = np.ascontiguousarray(np.transpose(_read(images, index, labeled), (2, 1, 0)))
            label = _read(labels, index, labeled).T
            depth = _clean_depth(_read(depths, index, labeled).T)
            segmentation = _map_labels(label, map_class, index, labeled)
            if normals_dir is not None:
                normal = _read_gt_normals(normals_dir, index, name, image.shape[:2])
            else:
                normal = normals_from_depth(depth)
                computed += 1
            write_png(image, out / "images" / f"{name}.png")
            write_png(segmentation, out / "segmentation" / f"{name}.png")
            write_npy(depth, out / "depth" / f"{name}.npy")
            write_npy(normal, out / "normals" / f"{name}.npy")
            if progress is not None:
                progress(done, len(order))
        _write_lines([f"{i:0{width}d}" for i in train], gt_sets / "train.txt")
        _write_lines([f"{i:0{width}d}" for i in test], gt_sets / "val.txt")
    return {
        "train": len(train),
        "val": len(test),
        "images": len(order),
        "normals_from_depth": computed,
    }


def load_mat_vars(path: Path, names: list[str], what: str) -> dict[str, np.ndarray]:
    """The variables ``names`` of a MATLAB file (v5 via SciPy, v7.3 via h5py) as arrays.

    Arrays are returned as MATLAB shows them (h5py's transposed storage is undone).
    """
    h5py = _import("h5py")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as handle:
            found = {name: handle[name] for name in names if name in handle}
            missing = [name for name in names if name not in found]
            if not missing:
                if not all(isinstance(value, h5py.Dataset) for value in found.values()):
                    raise NddrError(f"{path}: {', '.join(names)} must be numeric arrays ({what})")
                return {name: np.asarray(value[()]).T for name, value in found.items()}
            keys = list(handle.keys())
    else:
        scipy_io = _import("scipy.io", "scipy")
        try:
            contents = scipy_io.loadmat(path, variable_names=names)
            keys = [entry[0] for entry in scipy_io.whosmat(path)]
        except Exception as error:
            raise NddrError(
                f"{str(path)!r} is not a readable MATLAB .mat file ({error}): pass {what}"
            ) from None
        missing = [name for name in names if name not in contents]
        if not missing:
            return {name: np.asarray(contents[name]) for name in names}
    raise NddrError(
        f"{str(path)!r} has no variable {missing[0]!r} (it has {', '.join(keys) or 'none'}): "
        f"pass {what}"
    )


def _import(module: str, package: str | None = None) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        package = package or module
        raise NddrError(
            f"preparing NYUv2 needs the {package} package: pip install {package}"
        ) from None


def _datasets(handle: Any, path: Path) -> tuple[Any, Any, Any]:
    """The ``images``, ``labels`` and ``depths`` datasets, checked for shape and type."""
    found = {}
    for name in ("images", "labels", "depths"):
        value = handle.get(name)
        if value is None or not hasattr(value, "shape"):
            raise NddrError(
                f"{str(path)!r} has no dataset {name!r} (it has "
                f"{', '.join(handle.keys()) or 'nothing'}): {LABELED_HINT}"
            )
        found[name] = value
    images, labels, depths = found["images"], found["labels"], found["depths"]
    if images.ndim != 4 or images.shape[1] != 3:
        raise NddrError(
            f"{path}: dataset 'images' has shape {images.shape}, expected (N, 3, W, H) "
            f"(MATLAB's H x W x 3 x N): {LABELED_HINT}"
        )
    count, _, width, height = images.shape
    for name, value in (("labels", labels), ("depths", depths)):
        if value.shape != (count, width, height):
            raise NddrError(
                f"{path}: dataset {name!r} has shape {value.shape}, expected {(count, width, height)} "
                f"to match 'images' {images.shape}"
            )
    if images.dtype != np.uint8:
        raise NddrError(f"{path}: dataset 'images' is {images.dtype}, expected uint8")
    if not np.issubdtype(labels.dtype, np.integer):
        raise NddrError(f"{path}: dataset 'labels' is {labels.dtype}, expected integers")
    if not np.issubdtype(depths.dtype, np.floating):
        raise NddrError(f"{path}: dataset 'depths' is {depths.dtype}, expected float metres")
    return images, labels, depths


def _read(dataset: Any, index: int, path: Path) -> np.ndarray:
    """Item ``index`` (1-based) of an HDF5 dataset, with read failures named."""
    try:
        return np.asarray(dataset[index - 1])
    except (OSError, ValueError) as error:
        raise NddrError(
            f"{str(path)!r}: image {index} of dataset {dataset.name!r} cannot be read ({error}); "
            "the file may be truncated: download it again"
        ) from None


def _read_indices(value: np.ndarray, name: str, path: Path, count: int) -> np.ndarray:
    """A split variable as 1-based int64 indices, checked against ``count`` images."""
    value = np.asarray(value)
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) > 1) or value.size == 0:
        raise NddrError(f"{path}: {name} has shape {value.shape}, expected a non-empty vector")
    if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
        raise NddrError(f"{path}: {name} is {value.dtype}, expected integer indices")
    flat = value.reshape(-1)
    indices = flat.astype(np.int64)
    if not np.array_equal(indices, flat):
        raise NddrError(f"{path}: {name} has non-integer entries; expected 1-based image indices")
    bad = indices[(indices < 1) | (indices > count)]
    if bad.size:
        raise NddrError(
            f"{path}: {name} has index {int(bad[0])} outside 1..{count} (1-based indices into "
            f"the {count} images of the labelled file)"
        )
    unique, counts = np.unique(indices, return_counts=True)
    if (counts > 1).any():
        raise NddrError(f"{path}: {name} lists index {int(unique[counts > 1][0])} more than once")
    return indices


def _read_mapping(value: np.ndarray, path: Path) -> np.ndarray:
    """``mapClass`` as an int64 vector with entries 1..40, checked."""
    flat = np.asarray(value).reshape(-1)
    if flat.size == 0 or not np.issubdtype(flat.dtype, np.number):
        raise NddrError(f"{path}: mapClass must be a non-empty numeric vector")
    mapped = flat.astype(np.int64)
    bad = ~np.equal(mapped, flat) | (mapped < 1) | (mapped > NUM_CLASSES)
    if bad.any():
        position = int(np.argmax(bad))
        raise NddrError(
            f"{path}: mapClass maps class {position + 1} to {flat[position].item():g}, outside "
            f"1..{NUM_CLASSES}: pass classMapping40.mat"
        )
    return mapped


def _map_labels(label: np.ndarray, map_class: np.ndarray, index: int, path: Path) -> np.ndarray:
    """NYUv2 labels (0 = unlabelled, 1..894) in the NYUD-MT encoding: 0 = void, 1..40."""
    top = int(label.max()) if label.size else 0
    if top > map_class.size:
        raise NddrError(
            f"{path}: image {index} has label {top} but mapClass covers 1..{map_class.size}: "
            "pass the classMapping40.mat that belongs to this labelled file"
        )
    table = np.concatenate([[0], map_class]).astype(np.uint8)
    return table[label.astype(np.int64)]


def _clean_depth(depth: np.ndarray) -> np.ndarray:
    """Depth as float32 metres with NaN, infinite and non-positive values as 0 (invalid)."""
    depth = depth.astype(np.float32)
    return np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(0)).astype(np.float32)


def _read_gt_normals(folder: Path, index: int, name: str, shape: tuple[int, int]) -> np.ndarray:
    """Ground-truth normals of image ``index`` from ``folder`` (:data:`NORMALS_NAMING`)."""
    candidates = [
        folder / f"{stem}{suffix}"
        for stem in dict.fromkeys([name, str(index)])
        for suffix in (".npy", ".png")
    ]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        shown = ", ".join(candidate.name for candidate in candidates)
        raise NddrError(
            f"no ground-truth normals for image {index} in {str(folder)!r}: looked for {shown}"
        )
    normals = read_paper_normals(path) if path.suffix == ".png" else read_normals_npy(path)
    if normals.shape[:2] != tuple(shape):
        raise NddrError(
            f"normals file {str(path)!r} is {normals.shape[0]}x{normals.shape[1]} but image {index} is "
            f"{shape[0]}x{shape[1]}"
        )
    return normals


def _write_lines(lines: list[str], path: Path) -> None:
    """Write ``lines`` as a text file, atomically."""
    with atomic_write(path) as temp, open(temp, "w", encoding="utf-8") as stream:
        stream.write("".join(line + "\n" for line in lines))
