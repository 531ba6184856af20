"""What every dataset of this package is: a map from index to a dict of image and targets.

A dataset loads a *raw* sample as NumPy arrays in fixed conventions (below), checks it, and hands
it to a joint transform (:mod:`nddr.data.transforms`) that returns tensors. The conventions are the
contract between loaders, transforms, tasks and the ``nddr data`` commands:

============== ============================ =================================================
key kind        raw array (loader output)    meaning
============== ============================ =================================================
``image``       uint8 (H, W, 3), RGB
segmentation    uint8 (H, W)                 class 0..C-1, :data:`IGNORE_INDEX` = unlabelled
normals         float32 (H, W, 3)            unit (x right, y up, z toward the camera);
                                             (0, 0, 0) = invalid
depth           float32 (H, W)               metres; 0 = invalid; never NaN
saliency        uint8 (H, W)                 0 = background, 1 = salient,
                                             :data:`IGNORE_INDEX` = unlabelled
classification  int                          class 0..C-1 (gender, digits)
age             int                          age in years 0..C-1 (C = 100 classes)
regression      float                        a finite real value per image
============== ============================ =================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from nddr.data.conventions import (
    DENSE_KINDS,
    IGNORE_INDEX,
    IMAGE_LEVEL_KINDS,
    SPLITS,
    TARGET_KINDS,
    TargetKind,
    check_split,
)
from nddr.errors import NddrError

RawSample = dict[str, Any]
Transform = Callable[[RawSample], dict[str, Any]]


@dataclass(frozen=True)
class TargetSpec:
    """One target of a dataset: its kind (see the module table), class count and class names."""

    kind: str
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise NddrError(
                f"unknown target kind {self.kind!r}: use one of {', '.join(TARGET_KINDS)}"
            )
        if TargetKind(self.kind).has_classes and not self.num_classes:
            raise NddrError(f"a {self.kind} target needs num_classes")

        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise NddrError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    @property
    def dense(self) -> bool:
        return self.kind in DENSE_KINDS


class MultiTaskDataset(Dataset):
    """Base of every dataset: subclasses set ``targets`` and implement ``__len__``,
    :meth:`load_raw` and :meth:`source`.

    ``__getitem__`` loads the raw sample, checks it against the conventions (so a bad file is
    named, never trained on) and applies ``transform`` (none: the raw dict is returned).
    """

    targets: dict[str, TargetSpec]
    split: str

    def __init__(self, transform: Transform | None = None) -> None:
        self.transform = transform

    @classmethod
    def check_split(cls, split: str) -> None:
        """Raise a one-line error naming this dataset if ``split`` is not one of :data:`SPLITS`."""
        check_split(split, cls.__name__)

    def __len__(self) -> int:
        raise NotImplementedError

    def load_raw(self, index: int) -> RawSample:
        """The sample ``index`` as NumPy arrays / ints in the module's conventions."""
        raise NotImplementedError

    def source(self, index: int) -> str:
        """Where sample ``index`` comes from (file paths), for error messages."""
        return f"{type(self).__name__}[{index}]"

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.load_raw(index)
        check_sample(sample, self.targets, self.source(index))
        return self.transform(sample) if self.transform is not None else sample

    def select_targets(self, names: list[str] | None) -> None:
        """Keep only the targets ``names`` (None keeps all); unknown names are an error."""
        if names is None:
            return
        unknown = [name for name in names if name not in self.targets]
        if unknown:
            raise NddrError(
                f"{type(self).__name__} has no target {unknown[0]!r}: "
                f"choose from {', '.join(self.targets)}"
            )
        self.targets = {name: self.targets[name] for name in names}


def check_sample(sample: RawSample, targets: Mapping[str, TargetSpec], where: str) -> None:
    """Raise :class:`NddrError` naming ``where`` if ``sample`` breaks the raw conventions."""
    image = sample.get("image")
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
    ):
        described = _describe(image)
        raise NddrError(f"{where}: image must be uint8 (H, W, 3) RGB, got {described}")
    height, width = image.shape[:2]
    for name, spec in targets.items():
        if name not in sample:
            raise NddrError(f"{where}: target {name!r} is missing")
        value = sample[name]
        if spec.kind in IMAGE_LEVEL_KINDS:
            _check_image_level(value, name, spec, where)
            continue
        dtype, ndim = _DENSE_ARRAYS[spec.kind]
        if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != ndim:
            raise NddrError(
                f"{where}: {name} must be {np.dtype(dtype).name} with {ndim} dims, got {_describe(value)}"
            )
        if value.shape[:2] != (height, width) or (spec.kind == "normals" and value.shape[2] != 3):
            raise NddrError(
                f"{where}: {name} has shape {value.shape}, the image is {height}x{width}"
            )
        if spec.kind == "segmentation":
            bad = (value >= spec.num_classes) & (value != IGNORE_INDEX)
            if bad.any():
                raise NddrError(
                    f"{where}: {name} has label {int(value[bad][0])} outside 0..{spec.num_classes - 1} "
                    f"and {IGNORE_INDEX} (ignore); remap the labels"
                )
        elif spec.kind == "saliency":
            bad = (value > 1) & (value != IGNORE_INDEX)
            if bad.any():
                raise NddrError(
                    f"{where}: {name} has value {int(value[bad][0])}: a saliency mask holds 0 "
                    f"(background), 1 (salient) and {IGNORE_INDEX} (unlabelled); threshold it"
                )
        elif spec.kind == "depth":
            if not np.isfinite(value).all() or (value < 0).any():
                raise NddrError(
                    f"{where}: {name} has NaN, infinite or negative depth; mark invalid pixels 0"
                )
        else:
            squared = np.einsum("hwc,hwc->hw", value, value)
            if not np.isfinite(squared).all() and not np.isfinite(value).all():
                raise NddrError(f"{where}: {name} has NaN or infinite normals")
            # |length - 1| <= 1e-2 for every pixel that is not (0, 0, 0), checked on length^2.
            off_unit = (squared < 0.99**2) | (squared > 1.01**2)
            if (off_unit & np.any(value != 0, axis=2)).any():
                raise NddrError(
                    f"{where}: {name} has normals of zero or non-unit length outside the invalid mask "
                    "(invalid pixels must be (0, 0, 0))"
                )


_DENSE_ARRAYS = {
    "segmentation": (np.uint8, 2),
    "normals": (np.float32, 3),
    "depth": (np.float32, 2),
    "saliency": (np.uint8, 2),
}
"""The raw dtype and number of dimensions of each dense kind (the module table)."""


def _check_image_level(value: object, name: str, spec: TargetSpec, where: str) -> None:
    """A class label in 0..C-1, or for regression a finite float."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value
    if spec.kind == "regression":
        if not isinstance(value, (float, np.floating)) or not np.isfinite(value):
            raise NddrError(
                f"{where}: {name} value {value!r} is not a finite float: give a real number "
                "(NaN and infinity are not targets)"
            )
        return
    if not isinstance(value, (int, np.integer)) or not 0 <= int(value) < spec.num_classes:
        raise NddrError(f"{where}: {name} label {value!r} is outside 0..{spec.num_classes - 1}")


__all__ = [
    "DENSE_KINDS",
    "IGNORE_INDEX",
    "IMAGE_LEVEL_KINDS",
    "SPLITS",
    "TARGET_KINDS",
    "MultiTaskDataset",
    "RawSample",
    "TargetKind",
    "TargetSpec",
    "Transform",
    "check_sample",
]


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype.name} array of shape {value.shape}"
    return type(value).__name__
