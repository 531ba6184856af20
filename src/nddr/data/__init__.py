"""Datasets of tasks: NYUv2, PASCAL-Context, IMDB-WIKI, MTAN's preprocessed NYUv2 and
Cityscapes, and any folder described by a ``dataset.yaml`` (user files); Scenes and MultiDigits
(built in); and a user's own class named ``module:Class``.

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
    "folder": DatasetEntry(
        "nddr.data.folder.dataset:Folder",
        "your images and targets, described by ROOT/dataset.yaml (nddr data init ROOT)",
        builtin=False,
    ),
    "nyuv2_npy": DatasetEntry(
        "nddr.data.mtan_npy:NYUv2Npy",
        "NYUv2 as MTAN / LibMTL preprocess it (.npy, 288x384): 13-class segmentation, depth, normals",
        builtin=False,
    ),
    "cityscapes_npy": DatasetEntry(
        "nddr.data.mtan_npy:CityscapesNpy",
        "Cityscapes as MTAN / LibMTL preprocess it (.npy, 128x256): 7- or 19-class segmentation, "
        "inverse depth",
        builtin=False,
    ),
}

USER_DATASET = "module:Class"
"""How a dataset name names a user's own :class:`MultiTaskDataset` subclass instead."""


def build_dataset(
    name: str,
    root: PathLike | None,
    split: str = "train",
    transform: Transform | None = None,
    tasks: list[str] | None = None,
    **options: object,
) -> MultiTaskDataset:
    """The dataset ``name`` (see :data:`DATASETS`, or a user's class as ``module:Class``) read
    from ``root``.

    For built-in datasets ``root`` is the cache folder (``None``: the default cache); a user's
    class gets ``root`` as given. ``options`` go to the dataset's constructor; an unknown one is
    an error naming the accepted ones.
    """
    if ":" in name:
        dataset = user_dataset(name)
    elif name in DATASETS:
        entry = DATASETS[name]
        if root is None and not entry.builtin:
            raise NddrError(
                f"dataset {name!r} reads the user's files: pass the folder holding them"
            )
        dataset = entry.dataset
    else:
        raise unknown_choice("dataset", name, DATASETS, also=f", or a class as {USER_DATASET}")
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


def user_dataset(name: str) -> type[MultiTaskDataset]:
    """The class a ``module:Class`` dataset name names, which must subclass
    :class:`~nddr.data.base.MultiTaskDataset`; each way it can fail is a one-line error."""
    from nddr.data.base import MultiTaskDataset

    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise NddrError(f"dataset {name!r} is not {USER_DATASET}, e.g. mypackage.data:MyDataset")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # an import can raise anything; it is the user's module
        raise NddrError(
            f"dataset {name!r}: module {module_name!r} cannot be imported "
            f"({type(error).__name__}: {error}): install it or put its folder on PYTHONPATH"
        ) from None
    found = getattr(module, attribute, None)
    if found is None:
        raise NddrError(
            f"dataset {name!r}: module {module_name!r} ({getattr(module, '__file__', '')}) has "
            f"no {attribute!r}: check the class name"
        )
    if not (isinstance(found, type) and issubclass(found, MultiTaskDataset)):
        raise NddrError(
            f"dataset {name!r} is not a MultiTaskDataset subclass (it is of type "
            f"{type(found).__name__!r}): subclass nddr.data.MultiTaskDataset"
        )
    return found


_LAZY = {
    "Folder": "nddr.data.folder.dataset",
    "CityscapesNpy": "nddr.data.mtan_npy",
    "NYUv2Npy": "nddr.data.mtan_npy",
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
    "USER_DATASET",
    "CityscapesNpy",
    "DatasetEntry",
    "Folder",
    "IMDBWiki",
    "JointTransform",
    "MultiDigits",
    "MultiTaskDataset",
    "NYUv2",
    "NYUv2Npy",
    "PascalContext",
    "Scenes",
    "TargetKind",
    "TargetSpec",
    "build_dataset",
    "check_sample",
    "user_dataset",
]
