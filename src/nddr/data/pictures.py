"""A target's (or a prediction's) picture by its kind: what ``nddr data show`` and the tasks draw.

One place for how each kind looks, below both the dataset reports and the tasks, so that a
report draws a dataset's targets without building tasks.
"""

from __future__ import annotations

import numpy as np

from nddr.data.conventions import IGNORE_INDEX, TargetKind
from nddr.data.visualize import depth_rgb, normals_rgb, saliency_rgb, segmentation_rgb


def target_picture(
    name: str, kind: str, value: np.ndarray | int | float, num_classes: int | None = None
) -> np.ndarray | str:
    """One sample's target ``name`` of ``kind`` in raw conventions as an RGB panel (dense kinds)
    or a caption (image-level kinds).

    Normals may be (H, W, 3) or (3, H, W) and depth and saliency (H, W) or (1, H, W), so raw
    targets and network predictions draw alike (a saliency mask in black and white, a predicted
    probability in grey).
    """
    kind = TargetKind(kind)
    if kind is TargetKind.SEGMENTATION:
        assert num_classes is not None
        return segmentation_rgb(np.asarray(value), num_classes, IGNORE_INDEX)
    if kind is TargetKind.NORMALS:
        value = np.asarray(value)
        return normals_rgb(value if value.shape[-1] == 3 else np.moveaxis(value, 0, -1))
    if kind is TargetKind.DEPTH:
        value = np.asarray(value)
        return depth_rgb(value.reshape(value.shape[-2:]))
    if kind is TargetKind.SALIENCY:
        value = np.asarray(value)
        return saliency_rgb(value.reshape(value.shape[-2:]), IGNORE_INDEX)
    if kind is TargetKind.AGE:
        return f"{name} {float(value):.0f}"
    if kind is TargetKind.REGRESSION:
        return f"{name} {float(value):.4g}"
    return f"{name} {int(value)}"
