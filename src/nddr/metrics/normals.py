"""Surface normals: angle error pooled over all valid pixels of the whole set (paper §4)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from nddr.errors import NddrError

THRESHOLDS = (11.25, 22.5, 30.0)


def valid_normals(target: Tensor) -> Tensor:
    """Mask (N x H x W) of pixels with a ground-truth normal; (0, 0, 0) marks invalid ones."""
    return target.abs().sum(dim=1) > 0


def angle_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Angles in degrees between the L2-normalised prediction and target at the valid pixels.

    Both are ``N x 3 x H x W``; the result is a flat tensor over valid pixels.
    """
    if prediction.shape != target.shape or prediction.dim() != 4 or prediction.shape[1] != 3:
        raise NddrError(
            f"normals prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must "
            "both be N x 3 x H x W"
        )
    valid = valid_normals(target)
    predicted = torch.nn.functional.normalize(prediction.float(), dim=1).movedim(1, -1)[valid]
    truth = torch.nn.functional.normalize(target.float(), dim=1).movedim(1, -1)[valid]
    # atan2(|p x t|, p . t) is exact near 0 and 180 degrees, where float32 acos is off by
    # up to ~0.03 degrees (identical normals would not give 0).
    sine = torch.linalg.cross(predicted, truth, dim=-1).norm(dim=-1)
    angles = torch.atan2(sine, (predicted * truth).sum(dim=-1))
    # A zero prediction has no direction: 90 degrees from every normal (NaN stays NaN).
    angles = torch.where(predicted.abs().sum(dim=-1) == 0, math.pi / 2, angles)
    return torch.rad2deg(angles)


class NormalsMetric(Metric):
    """Mean and median angle error and % of pixels within 11.25, 22.5 and 30 degrees.

    All pooled over every valid pixel of the evaluation set (not averaged per image). The median
    is exact: the angles are kept (float32, 4 bytes per valid pixel: ~0.7 GB for NYUv2's 654 test
    images at full resolution) and gathered across processes under DDP.
    """

    full_state_update = False
    higher_is_better = False
    units: ClassVar[dict[str, str]] = {
        "mean": "°",
        "median": "°",
        **{f"within_{limit:g}": "%" for limit in THRESHOLDS},
    }

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("angles", [], dist_reduce_fx="cat")
        self.add_state("angle_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state(
            "within", torch.zeros(len(THRESHOLDS), dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, prediction: Tensor, target: Tensor) -> None:
        angles = angle_error(prediction, target)
        self.angles.append(angles)
        self.angle_sum += angles.double().sum()
        self.count += angles.numel()
        self.within += torch.stack([(angles < limit).sum() for limit in THRESHOLDS])

    def compute(self) -> dict[str, Tensor]:
        empty = isinstance(self.angles, list) and not self.angles
        angles = self.angle_sum.new_zeros(0) if empty else dim_zero_cat(self.angles)
        count = self.count.clamp(min=1)
        result = {
            "mean": self.angle_sum / count,
            "median": _exact_median(angles),
        }
        for limit, within in zip(THRESHOLDS, self.within):
            result[f"within_{limit:g}"] = 100.0 * within.double() / count
        return result


def _exact_median(values: Tensor) -> Tensor:
    """The median as numpy defines it (mean of the two middle values for an even count)."""
    if values.numel() == 0:
        return values.new_tensor(math.nan, dtype=torch.float64)
    ordered = values.double().sort().values
    middle = ordered.numel() // 2
    if ordered.numel() % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
