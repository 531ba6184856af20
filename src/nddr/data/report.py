"""What ``nddr data check`` and ``nddr data show`` compute: a dataset's summary and a sample grid."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from nddr.data.base import IGNORE_INDEX, MultiTaskDataset, TargetKind, check_sample
from nddr.data.conventions import SALIENCY_CLASSES
from nddr.data.pictures import target_picture
from nddr.data.visualize import grid
from nddr.errors import NddrError


def summarise(
    dataset: MultiTaskDataset,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Read and check every sample (or the first ``limit``); count classes and invalid pixels.

    Returns ``count``, ``checked``, per target a ``histogram`` (classes, saliency's background
    and salient pixels) and/or ``invalid_fraction`` (dense targets), depth's and regression's
    ``min``/``max``, and ``problems``: one line per sample that breaks the conventions (the file
    and what is wrong).
    """
    total = len(dataset) if limit is None else min(limit, len(dataset))
    stats: dict[str, dict[str, Any]] = {}
    for name, spec in dataset.targets.items():
        entry: dict[str, Any] = {"kind": spec.kind}
        if spec.num_classes:
            entry["histogram"] = np.zeros(spec.num_classes, dtype=np.int64)
        if spec.kind == TargetKind.SALIENCY:
            entry["histogram"] = np.zeros(len(SALIENCY_CLASSES), dtype=np.int64)
            entry["class_names"] = list(SALIENCY_CLASSES)
        if spec.dense:
            entry["invalid"] = entry["pixels"] = 0
        if spec.kind in (TargetKind.DEPTH, TargetKind.REGRESSION):
            entry["min"], entry["max"] = np.inf, -np.inf
        stats[name] = entry
    problems: list[str] = []
    for index in range(total):
        try:
            sample = dataset.load_raw(index)
            check_sample(sample, dataset.targets, dataset.source(index))
        except NddrError as error:
            problems.append(str(error))
            continue
        for name, spec in dataset.targets.items():
            _count(stats[name], spec.kind, sample[name])
        if progress is not None:
            progress(index + 1)
    for entry in stats.values():
        if "histogram" in entry:
            entry["histogram"] = entry["histogram"].tolist()
        if "pixels" in entry:
            entry["invalid_fraction"] = entry.pop("invalid") / max(entry.pop("pixels"), 1)
        if "min" in entry:
            entry["min"] = float(entry["min"]) if np.isfinite(entry["min"]) else None
            entry["max"] = float(entry["max"]) if np.isfinite(entry["max"]) else None
    for name, spec in dataset.targets.items():
        if spec.class_names:
            stats[name]["class_names"] = list(spec.class_names)
    summary = {"count": len(dataset), "checked": total, "targets": stats, "problems": problems}
    if getattr(dataset, "stats", None):
        summary["source"] = {key: _plain(value) for key, value in dataset.stats.items()}
    return summary


def _plain(value: Any) -> Any:
    """JSON-friendly copy of a dataset's own statistics (NumPy scalars, paths, dicts)."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def _count(entry: dict[str, Any], kind: str, value: Any) -> None:
    if kind in (TargetKind.SEGMENTATION, TargetKind.SALIENCY):
        valid = value[value != IGNORE_INDEX]
        entry["histogram"] += np.bincount(valid, minlength=len(entry["histogram"]))
        entry["invalid"] += value.size - valid.size
        entry["pixels"] += value.size
    elif kind == TargetKind.NORMALS:
        entry["invalid"] += int((~np.any(value != 0, axis=2)).sum())
        entry["pixels"] += value.shape[0] * value.shape[1]
    elif kind == TargetKind.DEPTH:
        valid = value[value > 0]
        entry["invalid"] += value.size - valid.size
        entry["pixels"] += value.size
        if valid.size:
            entry["min"] = min(entry["min"], float(valid.min()))
            entry["max"] = max(entry["max"], float(valid.max()))
    elif kind == TargetKind.REGRESSION:
        entry["min"] = min(entry["min"], float(value))
        entry["max"] = max(entry["max"], float(value))
    else:
        entry["histogram"][int(value)] += 1


def sample_grid(
    dataset: MultiTaskDataset, indices: Sequence[int], min_height: int = 128
) -> Image.Image:
    """One row per sample: image | each dense target as colours; image-level labels as caption.

    Small images are enlarged (nearest) to at least ``min_height`` pixels high.
    """
    rows, captions = [], []
    for index in indices:
        sample = dataset[index] if dataset.transform is None else dataset.load_raw(index)
        panels = [sample["image"]]
        words = [f"#{index}"]
        for name, spec in dataset.targets.items():
            picture = target_picture(name, spec.kind, sample[name], spec.num_classes)
            if isinstance(picture, str):
                words.append(picture)
            else:
                panels.append(picture)
        factor = max(1, -(-min_height // sample["image"].shape[0]))
        rows.append([panel.repeat(factor, axis=0).repeat(factor, axis=1) for panel in panels])
        captions.append("  ".join(words))
    return grid(rows, captions)
