"""NYUv2 (NYU Depth v2, 1449 labelled indoor RGB-D images): 40-class segmentation, surface
normals and depth.

The paper (§4) evaluates NDDR-CNN on NYUv2 with 40-class semantic segmentation and surface
normal estimation on the standard split of 795 training and 654 test images. :class:`NYUv2`
reads two layouts as they are, without conversion, and hands out raw samples in the
conventions of :mod:`nddr.data.base`.

**NYUD-MT layout** (``layout == "nyudmt"``; the layout of ASTMT / MTI-Net's ``NYUD_MT`` and
what :func:`nddr.data.nyuv2_prepare.prepare_nyuv2` writes)::

    root/images/{name}.png | .jpg   RGB
    root/segmentation/{name}.png    uint8, 0 = void, 1..40 = class + 1
    root/normals/{name}.npy         float (H, W, 3), normalised on load; zero length = invalid
    root/depth/{name}.npy           float (H, W) metres, 0 = invalid
    root/gt_sets/train.txt          one name per line; the "test" split reads gt_sets/val.txt
    root/gt_sets/val.txt

Targets are those whose folder exists.

**Paper layout** (``layout == "paper"``; the data released with the paper's code): list files
``training_seg.txt``, ``testing_seg.txt``, ``training_normal_mask.txt`` and
``testing_normal_mask.txt`` in ``root`` (or ``root/list``), lines ``image label`` with paths
relative to ``root`` (a leading ``/`` is tolerated). Segmentation PNGs hold 0..39 and
255 = ignore; normals are 3-channel uint8 PNGs decoded as ``n = 2 v / 255 - 1`` and
L2-normalised, with (255, 255, 255) = invalid. The two lists of a split are joined on the
image path; a split with one list has that target only.

The normals of both layouts are taken as stored: their axes are assumed to already follow the
base.py convention (x right, y up, z toward the camera).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nddr.data.base import (
    IGNORE_INDEX,
    MultiTaskDataset,
    RawSample,
    TargetSpec,
    Transform,
)
from nddr.data.files import (
    check_target_size,
    list_folder,
    read_image,
    read_label_png,
    read_lines,
    read_name_list,
    read_npy,
    read_rgb_png,
    require_dir,
)
from nddr.errors import NddrError
from nddr.io import PathLike

NUM_CLASSES = 40
"""Classes of the NYUv2-40 segmentation (Gupta et al. 2013 mapping)."""

CLASS_NAMES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop",
)  # fmt: skip
"""Names of the 40 classes, in label order (Gupta et al. 2013)."""


NYUDMT_LISTS = {"train": "train.txt", "test": "val.txt"}
"""File in ``gt_sets/`` of each split of the NYUD-MT layout."""

NYUDMT_FOLDERS = {"segmentation": "segmentation", "normals": "normals", "depth": "depth"}
NYUDMT_SUFFIX = {"segmentation": ".png", "normals": ".npy", "depth": ".npy"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

PAPER_LISTS = {
    "train": {"segmentation": "training_seg.txt", "normals": "training_normal_mask.txt"},
    "test": {"segmentation": "testing_seg.txt", "normals": "testing_normal_mask.txt"},
}
"""List files of the paper's layout, per split and target."""

NORMALS_INVALID_RGB = (255, 255, 255)
"""Pixel value marking an invalid normal in the paper's normal PNGs."""

_ZERO_LENGTH = 1e-3
"""Stored float normals shorter than this are invalid."""
_PNG_NEAR_ZERO = 0.1
"""A decoded PNG normal shorter than this is not a direction (unit vectors decode to ~1)."""


@dataclass
class _Sample:
    name: str
    image: Path
    files: dict[str, Path] = field(default_factory=dict)


class NYUv2(MultiTaskDataset):
    """NYUv2 from a NYUD-MT or a paper-layout folder (detected; see the module docstring).

    ``split`` is ``"train"`` (795 images) or ``"test"`` (654 images); ``tasks`` keeps only
    those targets (default: every target the folder has). ``layout`` says which layout was
    found; ``names[i]`` names sample ``i``.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
    ) -> None:
        super().__init__(transform)
        self.root = require_dir(
            root,
            "NYUv2 root",
            "pass the folder written by `nddr data prepare nyuv2` (NYUD-MT layout) "
            "or the paper's nyu_v2 folder",
        )
        self.check_split(split)
        self.split = split
        self.layout = detect_layout(self.root)
        if self.layout == "nyudmt":
            self.targets = {
                name: _spec(name)
                for name, folder in NYUDMT_FOLDERS.items()
                if (self.root / folder).is_dir()
            }
            if not self.targets:
                raise NddrError(
                    f"NYUv2 in {str(self.root)!r} has none of the target folders "
                    f"{', '.join(f + '/' for f in NYUDMT_FOLDERS.values())}: nothing to train on"
                )
            self._select(tasks, {name: f"there is no {name}/ folder" for name in NYUDMT_FOLDERS})
            self._samples = _index_nyudmt(self.root, split, list(self.targets))
        else:
            list_dir = _paper_list_dir(self.root)
            present = {
                name: list_dir / file
                for name, file in PAPER_LISTS[split].items()
                if (list_dir / file).is_file()
            }
            if not present:
                wanted = " and ".join(PAPER_LISTS[split].values())
                raise NddrError(
                    f"NYUv2 {split} split list missing: neither {wanted} is in {str(list_dir)!r}"
                )
            self.targets = {name: _spec(name) for name in present}
            why = {name: f"{file} is missing" for name, file in PAPER_LISTS[split].items()}
            why["depth"] = "the paper's layout has segmentation and normals only"
            self._select(tasks, why)
            self._samples = _index_paper(self.root, list_dir, split, list(self.targets))

    def _select(self, tasks: list[str] | None, why: dict[str, str]) -> None:
        """Keep ``tasks``; a known NYUv2 target this folder lacks is named with ``why``."""
        for name in tasks or []:
            if name in why and name not in self.targets:
                raise NddrError(
                    f"NYUv2 in {str(self.root)!r} ({self.layout} layout) has no {name} target: "
                    f"{why[name]}; choose from {', '.join(self.targets)}"
                )
        self.select_targets(tasks)

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def names(self) -> list[str]:
        """Sample names: the NYUD-MT name, or the image path of the paper's lists."""
        return [sample.name for sample in self._samples]

    def source(self, index: int) -> str:
        sample = self._samples[index]
        parts = [f"image {str(sample.image)!r}"]
        parts += [f"{name} {str(path)!r}" for name, path in sample.files.items()]
        return "NYUv2 sample " + ", ".join(parts)

    def load_raw(self, index: int) -> RawSample:
        sample = self._samples[index]
        image = read_image(sample.image)
        raw: RawSample = {"image": image}
        for name in self.targets:
            path = sample.files[name]
            value = _READERS[self.layout, name](path)
            check_target_size(name, path, value, sample.image, image)
            raw[name] = value
        return raw


def detect_layout(root: Path) -> str:
    """``"nyudmt"`` or ``"paper"``: which NYUv2 layout ``root`` holds (error if neither)."""
    if (root / "gt_sets").is_dir():
        return "nyudmt"
    list_dir = _paper_list_dir(root)
    if any(
        (list_dir / file).is_file() for lists in PAPER_LISTS.values() for file in lists.values()
    ):
        return "paper"
    if (root / "images").is_dir():
        return "nyudmt"
    papers = (
        ", ".join(PAPER_LISTS["train"].values()) + ", " + ", ".join(PAPER_LISTS["test"].values())
    )
    raise NddrError(
        f"no NYUv2 layout found in {str(root)!r}: looked for gt_sets/ and images/ (NYUD-MT layout, "
        f"as written by `nddr data prepare nyuv2`) and for {papers} in the folder or its list/ "
        "(the paper's layout)"
    )


def _spec(name: str) -> TargetSpec:
    return (
        TargetSpec("segmentation", NUM_CLASSES, CLASS_NAMES)
        if name == "segmentation"
        else TargetSpec(name)
    )


def _paper_list_dir(root: Path) -> Path:
    files = [file for lists in PAPER_LISTS.values() for file in lists.values()]
    if not any((root / file).is_file() for file in files) and (root / "list").is_dir():
        return root / "list"
    return root


def _index_nyudmt(root: Path, split: str, targets: list[str]) -> list[_Sample]:
    lists = root / "gt_sets"
    path = lists / NYUDMT_LISTS[split]
    if not path.is_file():
        raise NddrError(
            f"NYUv2 {split} split list {str(path)!r} does not exist: the NYUD-MT layout needs "
            "gt_sets/train.txt and gt_sets/val.txt (rerun `nddr data prepare nyuv2`)"
        )
    names = read_name_list(path)
    other_split = "test" if split == "train" else "train"
    other = lists / NYUDMT_LISTS[other_split]
    if other.is_file():
        others = {name for name, _ in read_name_list(other)}
        for name, number in names:
            if name in others:
                raise NddrError(
                    f"NYUv2 splits overlap: {name!r} ({path}:{number}) is also in {other}; "
                    "train and test must be disjoint"
                )
    contents = {folder: list_folder(root / folder) for folder in ("images", *targets)}
    samples = []
    for name, number in names:
        image = next(
            (
                root / "images" / (name + s)
                for s in IMAGE_SUFFIXES
                if name + s in contents["images"]
            ),
            None,
        )
        if image is None:
            raise NddrError(
                f"image of {name!r} ({path}:{number}) not found: looked for "
                f"{root / 'images' / name}{{{','.join(IMAGE_SUFFIXES)}}}"
            )
        sample = _Sample(name, image)
        for target in targets:
            file = name + NYUDMT_SUFFIX[target]
            if file not in contents[target]:
                raise NddrError(
                    f"{target} file {str(root / target / file)!r} of {name!r} ({path}:{number}) "
                    f"does not exist; remove the {target}/ folder or choose other tasks to skip it"
                )
            sample.files[target] = root / target / file
        samples.append(sample)
    return samples


def _read_pairs(root: Path, path: Path) -> dict[str, tuple[Path, Path, int]]:
    """image key -> (image path, label path, line) of a paper-layout list file."""
    pairs: dict[str, tuple[Path, Path, int]] = {}
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise NddrError(
                f"{path}:{number}: expected 'image label' (two paths relative to the root), "
                f"got {line.strip()!r}"
            )
        key, label = (field_.lstrip("/") for field_ in fields)
        if key in pairs:
            raise NddrError(
                f"{path}:{number}: image {key!r} is listed twice (first on line {pairs[key][2]})"
            )
        pairs[key] = (root / key, root / label, number)
    return pairs


def _index_paper(root: Path, list_dir: Path, split: str, targets: list[str]) -> list[_Sample]:
    lists = {name: list_dir / PAPER_LISTS[split][name] for name in targets}
    pairs = {name: _read_pairs(root, path) for name, path in lists.items()}
    first = targets[0]
    for name in targets[1:]:
        for a, b in ((first, name), (name, first)):
            missing = [key for key in pairs[a] if key not in pairs[b]]
            if missing:
                raise NddrError(
                    f"image {missing[0]!r} is in {lists[a]} but not in {lists[b]} "
                    f"({len(missing)} such): the two lists of a split must list the same images"
                )
    other_split = "test" if split == "train" else "train"
    for file in PAPER_LISTS[other_split].values():
        other = list_dir / file
        if not other.is_file():
            continue
        others = _read_pairs(root, other)
        for key, (_, _, number) in pairs[first].items():
            if key in others:
                raise NddrError(
                    f"NYUv2 splits overlap: image {key!r} ({lists[first]}:{number}) is also in "
                    f"{other}; train and test must be disjoint"
                )
    samples = []
    for key, (image, _, number) in pairs[first].items():
        if not image.is_file():
            raise NddrError(
                f"image file {str(image)!r} listed in {lists[first]}:{number} does not exist"
            )
        sample = _Sample(key, image)
        for name in targets:
            _, label, line = pairs[name][key]
            if not label.is_file():
                raise NddrError(
                    f"{name} file {str(label)!r} listed in {lists[name]}:{line} does not exist"
                )
            sample.files[name] = label
        samples.append(sample)
    return samples


def read_nyudmt_segmentation(path: PathLike) -> np.ndarray:
    """A NYUD-MT segmentation PNG (0 = void, 1..40) as uint8 labels 0..39, 255 = ignore."""
    stored = read_label_png(path)
    if stored.size and int(stored.max()) > NUM_CLASSES:
        raise NddrError(
            f"segmentation file {str(path)!r} has label {int(stored.max())}: the NYUD-MT encoding "
            f"is 0 = void and 1..{NUM_CLASSES} = classes"
        )
    return np.where(stored == 0, IGNORE_INDEX, stored - 1).astype(np.uint8)


def read_paper_segmentation(path: PathLike) -> np.ndarray:
    """A paper-layout segmentation PNG (0..39, 255 = ignore) as uint8, checked."""
    labels = read_label_png(path)
    bad = (labels >= NUM_CLASSES) & (labels != IGNORE_INDEX)
    if bad.any():
        raise NddrError(
            f"segmentation file {str(path)!r} has label {int(labels[bad][0])}: the paper's layout "
            f"uses 0..{NUM_CLASSES - 1} and {IGNORE_INDEX} = ignore"
        )
    return np.ascontiguousarray(labels, dtype=np.uint8)


def read_depth_npy(path: PathLike) -> np.ndarray:
    """A depth ``.npy`` (float (H, W) or (H, W, 1), metres, 0 = invalid) as float32 (H, W)."""
    depth = read_npy(path)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise NddrError(
            f"depth file {str(path)!r} holds {depth.dtype.name} {depth.shape}: expected float "
            "(H, W) in metres"
        )
    if np.isnan(depth).any():
        raise NddrError(
            f"depth file {str(path)!r} has NaN depth: mark invalid pixels 0 (metres), not NaN"
        )
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise NddrError(
            f"depth file {str(path)!r} has infinite or negative depth: mark invalid pixels 0"
        )
    return depth.astype(np.float32)


def read_normals_npy(path: PathLike) -> np.ndarray:
    """A float normals ``.npy`` (H, W, 3) as unit float32 normals, zero length = invalid."""
    stored = read_npy(path)
    if stored.ndim != 3 or stored.shape[2] != 3 or not np.issubdtype(stored.dtype, np.floating):
        raise NddrError(
            f"normals file {str(path)!r} holds {stored.dtype.name} {stored.shape}: expected float "
            "(H, W, 3)"
        )
    return normalise_normals(stored, f"normals file {str(path)!r}")


def normalise_normals(normals: np.ndarray, where: str) -> np.ndarray:
    """Float (H, W, 3) vectors as unit float32 normals; (near) zero length becomes (0, 0, 0).

    Non-finite values are an error naming ``where``.
    """
    normals = np.asarray(normals)
    if normals.dtype not in (np.float32, np.float64):
        normals = normals.astype(np.float64)
    squared = np.einsum("hwc,hwc->hw", normals, normals)
    if not np.isfinite(squared).all():
        if not np.isfinite(normals).all():
            raise NddrError(f"{where} has NaN or infinite normals: mark invalid pixels (0, 0, 0)")
        normals = normals.astype(np.float64)  # finite but too large to square in float32
        squared = np.einsum("hwc,hwc->hw", normals, normals)
    valid = squared > _ZERO_LENGTH**2
    scale = np.zeros_like(squared)
    np.divide(1.0, np.sqrt(squared, where=valid, out=scale), where=valid, out=scale)
    return (normals * scale[..., None]).astype(np.float32, copy=False)


def decode_normals_png(
    rgb: np.ndarray,
    where: str,
    full_scale: int = 255,
    invalid_rgb: tuple[int, int, int] = NORMALS_INVALID_RGB,
) -> np.ndarray:
    """The paper's normal encoding, uint8 (H, W, 3), as unit float32 normals.

    ``n = 2 v / full_scale - 1`` (255: 8-bit PNGs, 65535: 16-bit), L2-normalised; pixels equal to
    ``invalid_rgb`` (the paper's: (255, 255, 255)) are invalid and become (0, 0, 0). A pixel that
    decodes to (near) zero length without being marked invalid is an error naming ``where``.
    """
    rgb = np.asarray(rgb)
    red, green, blue = invalid_rgb
    invalid = (rgb[..., 0] == red) & (rgb[..., 1] == green) & (rgb[..., 2] == blue)
    # float32 holds every 8- and 16-bit value exactly; the squared length needs no square root
    # until the valid pixels are scaled (as normalise_normals does for float normals).
    decoded = rgb.astype(np.float32) * np.float32(2.0 / full_scale) - np.float32(1.0)
    squared = np.einsum("hwc,hwc->hw", decoded, decoded)
    bad = (squared < _PNG_NEAR_ZERO**2) & ~invalid
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise NddrError(
            f"{where} has a normal of (near) zero length at row {row}, column {col} "
            f"(value {tuple(int(c) for c in rgb[row, col])}): encode normals as "
            f"{full_scale} (n + 1) / 2 and invalid pixels as {tuple(invalid_rgb)}"
        )
    scale = np.zeros_like(squared)
    np.divide(1.0, np.sqrt(squared, where=~invalid, out=scale), where=~invalid, out=scale)
    return decoded * scale[..., None]


def read_paper_normals(path: PathLike) -> np.ndarray:
    """A paper-layout normals PNG as unit float32 (H, W, 3) normals, (0, 0, 0) = invalid."""
    return decode_normals_png(read_rgb_png(path), f"normals file {str(path)!r}")


_READERS: dict[tuple[str, str], Callable[[Path], np.ndarray]] = {
    ("nyudmt", "segmentation"): read_nyudmt_segmentation,
    ("nyudmt", "normals"): read_normals_npy,
    ("nyudmt", "depth"): read_depth_npy,
    ("paper", "segmentation"): read_paper_segmentation,
    ("paper", "normals"): read_paper_normals,
}
