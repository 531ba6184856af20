"""NYUv2 and Cityscapes as MTAN (Liu et al., CVPR 2019) and LibMTL preprocess them: one ``.npy``
per sample and target.

The layout, as MTAN's and LibMTL's loaders read it::

    root/train/image/{i}.npy    float (H, W, 3) RGB in [0, 1]
    root/train/label/{i}.npy    (H, W) class index, -1 = unlabelled (Cityscapes: label_7/, label_19/)
    root/train/depth/{i}.npy    float (H, W, 1), 0 = invalid
    root/train/normal/{i}.npy   float (H, W, 3) in [-1, 1], (0, 0, 0) = invalid (NYUv2 only)
    root/val/...                the same; nddr's "test" split reads val/

Samples are numbered 0..N-1 by the files of ``image/``; a gap in the numbers or a target file
missing for a number is an error naming the file. Targets are those whose folder exists.
Samples are converted to the raw conventions of :mod:`nddr.data.base`: the image to uint8
(round(255 x)), label -1 to :data:`~nddr.data.base.IGNORE_INDEX`, depth to float32 (H, W).

* **NYUv2** (``nyuv2_npy``; 795 train / 654 val images at 288 x 384): 13-class segmentation
  (Couprie et al. 2013 classes), depth in metres, normals. LibMTL negates the normals' first
  channel when it mirrors an image, as nddr's x (right) axis: the normals are taken as stored,
  (x right, y up, z toward the camera) assumed, like :mod:`nddr.data.nyuv2`'s.
* **Cityscapes** (``cityscapes_npy``; 2975 train / 500 val images at 128 x 256): 7-class
  segmentation (the Cityscapes categories without void; ``num_classes=19``: the 19 evaluated
  classes, from ``label_19/``) and depth. The depth files hold Cityscapes' disparity-derived
  *inverse* depth, not metres (lorenmt/mtan issues 15 and 25; values about 0..0.5, 0 =
  invalid): nddr trains and scores it as stored, so depth errors are in those units, as MTAN and
  LibMTL report them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nddr.data.base import IGNORE_INDEX, MultiTaskDataset, RawSample, TargetSpec, Transform
from nddr.data.files import check_target_size, read_npy, require_dir
from nddr.data.nyuv2 import normalise_normals, read_depth_npy
from nddr.errors import NddrError
from nddr.io import PathLike

SPLIT_FOLDERS = {"train": "train", "test": "val"}
"""Folder of each nddr split: the layout's validation set is nddr's test split."""

TARGET_FOLDERS = {"segmentation": "label", "depth": "depth", "normals": "normal"}
"""Folder of each target inside a split folder (Cityscapes labels: see :meth:`label_folder`)."""

IMAGE_FOLDER = "image"
STORED_IGNORE = -1
"""Label of unlabelled pixels in the files."""
_RANGE_SLACK = 1e-3
"""Image values up to this far outside [0, 1] (normals: [-1, 1]) are float rounding."""

NYUV2_CLASSES = (
    "bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa",
    "table", "tv", "wall", "window",
)  # fmt: skip
"""NYUv2's 13 classes (Couprie et al. 2013), in label order."""

CITYSCAPES_CLASSES = {
    7: ("flat", "construction", "object", "nature", "sky", "human", "vehicle"),
    19: (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
        "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus",
        "train", "motorcycle", "bicycle",
    ),
}  # fmt: skip
"""Cityscapes' classes per class count: the 7 categories without void, or the 19 train ids."""


@dataclass(frozen=True)
class _Sample:
    image: Path
    files: dict[str, Path]


class MtanNpyDataset(MultiTaskDataset):
    """A dataset in the MTAN / LibMTL ``.npy`` layout (module docstring); subclasses name the
    dataset, its targets and its class names."""

    DATASET = ""
    TARGETS: tuple[str, ...] = ()

    def __init__(
        self,
        root: PathLike,
        split: str,
        transform: Transform | None,
        tasks: list[str] | None,
        class_names: tuple[str, ...],
    ) -> None:
        super().__init__(transform)
        self.check_split(split)
        self.split = split
        self.root = require_dir(
            root,
            f"{self.DATASET} root",
            "pass the folder holding train/ and val/ of MTAN's or LibMTL's preprocessed files",
        )
        self.folder = require_dir(
            self.root / SPLIT_FOLDERS[split],
            f"{self.DATASET} {split} split folder",
            f"the layout keeps the {split} split in {SPLIT_FOLDERS[split]}/",
        )
        folders = {name: TARGET_FOLDERS[name] for name in self.TARGETS}
        folders["segmentation"] = self.label_folder(len(class_names))
        present = [name for name in self.TARGETS if (self.folder / folders[name]).is_dir()]
        if not present:
            wanted = ", ".join(folders[name] + "/" for name in self.TARGETS)
            raise NddrError(
                f"{self.DATASET} folder {str(self.folder)!r} has none of {wanted}: nothing to train on"
            )
        for name in tasks or []:
            if name in self.TARGETS and name not in present:
                raise NddrError(
                    f"{self.DATASET} folder {str(self.folder)!r} has no {folders[name]}/ for "
                    f"the {name} target: choose from {', '.join(present)}"
                )
        self.targets = {
            name: TargetSpec("segmentation", len(class_names), class_names)
            if name == "segmentation"
            else TargetSpec(name)
            for name in present
        }
        self.select_targets(tasks)
        self._folders = {name: self.folder / folders[name] for name in self.targets}
        self._samples = self._index()

    def label_folder(self, num_classes: int) -> str:
        """The label folder's name for ``num_classes`` classes (``label``)."""
        return TARGET_FOLDERS["segmentation"]

    def _index(self) -> list[_Sample]:
        images = self.folder / IMAGE_FOLDER
        numbers = _numbered_files(require_dir(images, f"{self.DATASET} image folder"))
        missing = next((i for i, n in enumerate(numbers) if i != n), None)
        if missing is not None:
            raise NddrError(
                f"{self.DATASET} image {str(images / f'{missing}.npy')!r} is missing: the layout "
                f"numbers samples 0..N-1 without gaps (found up to {numbers[-1]}.npy)"
            )
        contents = {name: _listdir(folder) for name, folder in self._folders.items()}
        samples = []
        for number in numbers:
            file = f"{number}.npy"
            for name, folder in self._folders.items():
                if file not in contents[name]:
                    raise NddrError(
                        f"{name} file {str(folder / file)!r} of image {str(images / file)!r} does "
                        f"not exist; restore it, or leave out the {name} task to skip it"
                    )
            samples.append(
                _Sample(
                    images / file, {name: folder / file for name, folder in self._folders.items()}
                )
            )
        return samples

    def __len__(self) -> int:
        return len(self._samples)

    def source(self, index: int) -> str:
        sample = self._samples[index]
        parts = [f"image {str(sample.image)!r}"]
        parts += [f"{name} {str(path)!r}" for name, path in sample.files.items()]
        return f"{self.DATASET} sample " + ", ".join(parts)

    def load_raw(self, index: int) -> RawSample:
        sample = self._samples[index]
        image = read_float_image(sample.image)
        raw: RawSample = {"image": image}
        for name, spec in self.targets.items():
            path = sample.files[name]
            if name == "segmentation":
                value = read_label_npy(path, spec.num_classes, self.class_hint)
            elif name == "depth":
                value = read_depth_npy(path)
            else:
                value = read_unit_range_normals(path)
            check_target_size(name, path, value, sample.image, image)
            raw[name] = value
        return raw

    @property
    def class_hint(self) -> str:
        """What to do about a label beyond the class count."""
        return "the layout stores -1 for unlabelled pixels"


class NYUv2Npy(MtanNpyDataset):
    """NYUv2 in the MTAN / LibMTL layout: 13-class segmentation, depth, normals (288 x 384)."""

    DATASET = "nyuv2_npy"
    TARGETS = ("segmentation", "depth", "normals")

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
    ) -> None:
        super().__init__(root, split, transform, tasks, NYUV2_CLASSES)


class CityscapesNpy(MtanNpyDataset):
    """Cityscapes in the MTAN / LibMTL layout: segmentation, inverse depth (128 x 256).

    ``num_classes``: 7 (default; ``label_7/``, or LibMTL's ``label/``) or 19 (``label_19/``, or
    ``label/`` holding the 19 classes); a label at or above it is an error naming the file.
    """

    DATASET = "cityscapes_npy"
    TARGETS = ("segmentation", "depth")

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
        *,
        num_classes: int = 7,
    ) -> None:
        if num_classes not in CITYSCAPES_CLASSES:
            choices = " or ".join(str(count) for count in CITYSCAPES_CLASSES)
            raise NddrError(
                f"cityscapes_npy option num_classes = {num_classes!r} is not valid: use {choices}"
            )
        super().__init__(root, split, transform, tasks, CITYSCAPES_CLASSES[num_classes])

    def label_folder(self, num_classes: int) -> str:
        """``label_{num_classes}`` (MTAN's release) if the split has it, else ``label`` (LibMTL's)."""
        counted = f"{TARGET_FOLDERS['segmentation']}_{num_classes}"
        return counted if (self.folder / counted).is_dir() else TARGET_FOLDERS["segmentation"]

    @property
    def class_hint(self) -> str:
        other = [
            count
            for count in CITYSCAPES_CLASSES
            if count > self.targets["segmentation"].num_classes
        ]
        if other:
            return f"if the files hold the {other[0]} classes, pass num_classes={other[0]}"
        return "the layout stores -1 for unlabelled pixels"


def read_float_image(path: PathLike) -> np.ndarray:
    """A float (H, W, 3) image in [0, 1] as uint8 RGB, round(255 x)."""
    stored = read_npy(path)
    if stored.ndim != 3 or stored.shape[2] != 3 or not np.issubdtype(stored.dtype, np.floating):
        raise NddrError(
            f"image file {str(path)!r} holds {stored.dtype.name} {stored.shape}: expected float "
            "(H, W, 3) RGB in [0, 1]"
        )
    low, high = float(stored.min(initial=0.0)), float(stored.max(initial=0.0))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise NddrError(f"image file {str(path)!r} has NaN or infinite values")
    if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
        raise NddrError(
            f"image file {str(path)!r} has values {low:.3g}..{high:.3g}: expected RGB in [0, 1] "
            "(an image stored as 0..255 must be divided by 255)"
        )
    scaled = np.multiply(stored, 255.0, dtype=np.float32)
    return np.rint(scaled, out=scaled).astype(np.uint8)


def read_label_npy(path: PathLike, num_classes: int, hint: str) -> np.ndarray:
    """An (H, W) label file (-1 = unlabelled, 0..C-1) as uint8 with 255 = ignore; a fraction
    or a label outside -1..C-1 is an error naming the file, with ``hint``."""
    stored = read_npy(path)
    if stored.ndim != 2 or not (
        np.issubdtype(stored.dtype, np.floating) or np.issubdtype(stored.dtype, np.integer)
    ):
        raise NddrError(
            f"label file {str(path)!r} holds {stored.dtype.name} {stored.shape}: expected "
            "(H, W) class indices, -1 = unlabelled"
        )
    if np.issubdtype(stored.dtype, np.floating) and not (stored == np.round(stored)).all():
        raise NddrError(
            f"label file {str(path)!r} has non-integer labels: expected class indices, "
            "-1 = unlabelled"
        )
    bad = (stored != STORED_IGNORE) & ((stored < 0) | (stored >= num_classes))
    if bad.any():
        raise NddrError(
            f"label file {str(path)!r} has label {stored[bad][0]:g} outside 0..{num_classes - 1} "
            f"and {STORED_IGNORE} (unlabelled): {hint}"
        )
    labels = np.where(stored == STORED_IGNORE, IGNORE_INDEX, stored)
    return labels.astype(np.uint8)


def read_unit_range_normals(path: PathLike) -> np.ndarray:
    """A float (H, W, 3) normals file in [-1, 1] as unit float32 normals, (0, 0, 0) = invalid;
    values outside [-1, 1] (an 8-bit or [0, 1] encoding) are an error naming the file."""
    stored = read_npy(path)
    if stored.ndim != 3 or stored.shape[2] != 3 or not np.issubdtype(stored.dtype, np.floating):
        raise NddrError(
            f"normals file {str(path)!r} holds {stored.dtype.name} {stored.shape}: expected float "
            "(H, W, 3) in [-1, 1]"
        )
    largest = float(np.abs(stored).max(initial=0.0))
    if np.isfinite(largest) and largest > 1 + _RANGE_SLACK:
        raise NddrError(
            f"normals file {str(path)!r} has values beyond [-1, 1] (largest {largest:.3g}): "
            "expected unit normals, not an encoding"
        )
    return normalise_normals(stored, f"normals file {str(path)!r}")


def _numbered_files(folder: Path) -> list[int]:
    """The sorted numbers i of the ``{i}.npy`` files of ``folder``; another name is an error."""
    numbers = []
    for name in _listdir(folder):
        stem, suffix = os.path.splitext(name)
        if suffix != ".npy":
            continue
        if not (stem.isdigit() and str(int(stem)) == stem):
            raise NddrError(
                f"file {str(folder / name)!r} is not named {{number}}.npy: the layout numbers "
                "samples 0..N-1"
            )
        numbers.append(int(stem))
    if not numbers:
        raise NddrError(f"image folder {str(folder)!r} has no .npy files: nothing to read")
    return sorted(numbers)


def _listdir(folder: Path) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError as error:
        raise NddrError(f"folder {str(folder)!r} cannot be listed ({error})") from None
