"""The names every dataset, task and command shares: target kinds, splits, the ignore label.

Torch-free, so that command-line parsers and the config can name them without loading a model.
"""

from __future__ import annotations

from enum import StrEnum

from nddr.errors import unknown_choice

IGNORE_INDEX = 255
"""Segmentation label of unlabelled pixels (and of crop padding)."""

SPLITS = ("train", "test")
"""The splits of every dataset."""

SALIENCY_CLASSES = ("background", "salient")
"""The two classes of a saliency mask, in label order (0, 1)."""

ENCODING_SCALE = 127.5
"""e = ENCODING_SCALE (n + 1) = (n + 1) / 2 * 255: the 8-bit normal encoding of NYUv2's PNGs."""
ENCODED_PREFIX = "encoded_"
"""Prefix of the normal metrics measured in that encoding (``encoded_mean``, ...)."""


class TargetKind(StrEnum):
    """What a target is (raw conventions in :mod:`nddr.data.base`); a task reads one kind."""

    SEGMENTATION = "segmentation"
    NORMALS = "normals"
    DEPTH = "depth"
    SALIENCY = "saliency"
    CLASSIFICATION = "classification"
    AGE = "age"
    REGRESSION = "regression"

    @property
    def dense(self) -> bool:
        """Whether the target is per pixel (else one label per image)."""
        return self in DENSE_KINDS

    @property
    def has_classes(self) -> bool:
        """Whether the target needs a class count (saliency's two classes are fixed)."""
        return self in CLASS_KINDS


DENSE_KINDS = (TargetKind.SEGMENTATION, TargetKind.NORMALS, TargetKind.DEPTH, TargetKind.SALIENCY)
IMAGE_LEVEL_KINDS = (TargetKind.CLASSIFICATION, TargetKind.AGE, TargetKind.REGRESSION)
CLASS_KINDS = (TargetKind.SEGMENTATION, TargetKind.CLASSIFICATION, TargetKind.AGE)
"""The kinds whose targets are labels 0..C-1 of a dataset's own class count."""
TARGET_KINDS = DENSE_KINDS + IMAGE_LEVEL_KINDS


def check_split(split: str, dataset: str) -> None:
    """Raise a one-line error if ``split`` is not one of :data:`SPLITS`; ``dataset`` names it."""
    if split not in SPLITS:
        raise unknown_choice(f"{dataset} split", str(split), SPLITS)
