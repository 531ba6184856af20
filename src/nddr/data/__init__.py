"""Datasets of tasks: NYUv2 and IMDB-WIKI (user files), Scenes and MultiDigits (built in).

Every dataset returns per sample a dict of ``image`` and one target per task (conventions in
:mod:`nddr.data.base`); :func:`build_dataset` makes one by name.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from nddr.data.base import (
    IGNORE_INDEX,
    MultiTaskDataset,
    TargetSpec,
    Transform,
    check_sample,
)
from nddr.data.imdb_wiki import IMDBWiki
from nddr.data.multidigits import MultiDigits
from nddr.data.nyuv2 import NYUv2
from nddr.data.scenes import Scenes
from nddr.data.transforms import JointTransform
from nddr.errors import NddrError, unknown_choice
from nddr.io import PathLike


@dataclass(frozen=True)
class DatasetEntry:
    """A named dataset: its class, a one-line description, and whether it ships with nddr."""

    dataset: type[MultiTaskDataset]
    description: str
    builtin: bool


DATASETS: dict[str, DatasetEntry] = {
    "scenes": DatasetEntry(
        Scenes, "rendered rooms: 6-class segmentation, normals, depth (default)", builtin=True
    ),
    "multidigits": DatasetEntry(
        MultiDigits, "two real handwritten digits side by side: left, right", builtin=True
    ),
    "nyuv2": DatasetEntry(
        NYUv2, "NYU Depth v2: 40-class segmentation, normals, depth (paper §4)", builtin=False
    ),
    "imdb_wiki": DatasetEntry(
        IMDBWiki, "IMDB-WIKI faces: age (100 classes), gender (paper §5.2)", builtin=False
    ),
}

SPLITS = ("train", "test")


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
    accepted = [
        parameter.name
        for parameter in inspect.signature(entry.dataset).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for key in options:
        if not accepted:
            raise NddrError(f"dataset {name!r} takes no options, got {key!r}")
        if key not in accepted:
            raise unknown_choice(f"option of dataset {name!r}", key, accepted)
    return entry.dataset(root, split, transform, tasks, **options)


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
    "Scenes",
    "TargetSpec",
    "build_dataset",
    "check_sample",
]
