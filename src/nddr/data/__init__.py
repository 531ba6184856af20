"""Datasets of tasks: NYUv2, PASCAL-Context and IMDB-WIKI (user files), Scenes and MultiDigits
(built in).

Every dataset returns per sample a dict of ``image`` and one target per task (conventions in
:mod:`nddr.data.base`); :func:`build_dataset` makes one by name. The catalogue
(:data:`DATASETS`) and the conventions load without torch; a dataset class loads when it is
first used.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nddr.data.conventions import IGNORE_INDEX, SPLITS, TargetKind
from nddr.errors import NddrError, unknown_choice
from nddr.lazy import lazy_exports

if TYPE_CHECKING:
    from nddr.data.base import MultiTaskDataset, Transform
    from nddr.io import PathLike


@dataclass(frozen=True)
class DatasetEntry:
    """A named dataset: where its class is (``module:Class``), a one-line description, and
    whether it ships with nddr."""

    location: str
    description: str
    builtin: bool

    @property
    def dataset(self) -> type[MultiTaskDataset]:
        """The dataset class (imported on first use)."""
        module, name = self.location.split(":")
        return getattr(importlib.import_module(module), name)


DATASETS: dict[str, DatasetEntry] = {
    "scenes": DatasetEntry(
        "nddr.data.scenes:Scenes",
        "rendered rooms: 6-class segmentation, normals, depth (default)",
        builtin=True,
    ),
    "multidigits": DatasetEntry(
        "nddr.data.multidigits:MultiDigits",
        "two real handwritten digits side by side: left, right",
        builtin=True,
    ),
    "nyuv2": DatasetEntry(
        "nddr.data.nyuv2:NYUv2",
        "NYU Depth v2: 40-class segmentation, normals, depth (paper §4)",
        builtin=False,
    ),
    "pascal_context": DatasetEntry(
        "nddr.data.pascal_context:PascalContext",
        "PASCAL-Context multi-task (PASCAL_MT): 21-class segmentation, human parts, saliency, "
        "normals",
        builtin=False,
    ),
    "imdb_wiki": DatasetEntry(
        "nddr.data.imdb_wiki:IMDBWiki",
        "IMDB-WIKI faces: age (100 classes), gender (paper §5.2)",
        builtin=False,
    ),
}


def build_dataset(
    name: str,
    root: PathLike | None,
    split: str = "train",
    transform: Transform | None = None,
    tasks: list[str] | None = None,
    **options: object,
) -> MultiTaskDataset:
    """The dataset ``name`` (see :data:`DATASETS`) read from ``root``.

    For built-in datasets ``root`` is the cache folder (``None``: the default cache). ``options``
    go to the dataset's constructor; an unknown one is an error naming the accepted ones.
    """
    if name not in DATASETS:
        raise unknown_choice("dataset", name, DATASETS)
    entry = DATASETS[name]
    if root is None and not entry.builtin:
        raise NddrError(f"dataset {name!r} reads the user's files: pass the folder holding them")
    dataset = entry.dataset
    accepted = [
        parameter.name
        for parameter in inspect.signature(dataset).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for key in options:
        if not accepted:
            raise NddrError(f"dataset {name!r} takes no options, got {key!r}")
        if key not in accepted:
            raise unknown_choice(f"option of dataset {name!r}", key, accepted)
    return dataset(root, split, transform, tasks, **options)


_LAZY = {
    "IMDBWiki": "nddr.data.imdb_wiki",
    "JointTransform": "nddr.data.transforms",
    "MultiDigits": "nddr.data.multidigits",
    "MultiTaskDataset": "nddr.data.base",
    "NYUv2": "nddr.data.nyuv2",
    "PascalContext": "nddr.data.pascal_context",
    "Scenes": "nddr.data.scenes",
    "TargetSpec": "nddr.data.base",
    "Transform": "nddr.data.base",
    "check_sample": "nddr.data.base",
}


__getattr__ = lazy_exports(__name__, _LAZY)
"""The dataset classes and torch-backed helpers, imported on first access."""


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "DATASETS",
    "IGNORE_INDEX",
    "SPLITS",
    "DatasetEntry",
    "IMDBWiki",
    "JointTransform",
    "MultiDigits",
    "MultiTaskDataset",
    "NYUv2",
    "PascalContext",
    "Scenes",
    "TargetKind",
    "TargetSpec",
    "build_dataset",
    "check_sample",
]
