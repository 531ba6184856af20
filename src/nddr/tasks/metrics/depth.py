"""Depth (NYUv2's common third task, beyond the paper): errors pooled over valid pixels."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric

from nddr.errors import NddrError


class DepthMetric(Metric):
    """Absolute error, relative error, RMSE and % of pixels with delta < 1.25.

    Pooled over every pixel with valid ground truth (depth > 0) of the evaluation set; delta is
    max(pred / true, true / pred), so a non-positive prediction never counts as within 1.25.
    """

    full_state_update = False
    higher_is_better = False
    units: ClassVar[dict[str, str]] = {"delta_1.25": "%"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("abs_sum", "rel_sum", "sq_sum"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("within", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        if prediction.shape != target.shape:
            raise NddrError(
                f"depth prediction {tuple(prediction.shape)} and target {tuple(target.shape)} "
                "differ in shape: resize the prediction to the target"
            )
        valid = target > 0
        predicted = prediction[valid].double()
        truth = target[valid].double()
        error = (predicted - truth).abs()
        self.abs_sum += error.sum()
        self.rel_sum += (error / truth).sum()
        self.sq_sum += (error**2).sum()
        ratio = torch.maximum(predicted / truth, truth / predicted)
        self.within += ((predicted > 0) & (ratio < 1.25)).sum()
        self.count += truth.numel()

    def compute(self) -> dict[str, Tensor]:
        count = self.count.clamp(min=1).double()
        return {
            "abs_error": self.abs_sum / count,
            "rel_error": self.rel_sum / count,
            "rmse": torch.sqrt(self.sq_sum / count),
            "delta_1.25": 100.0 * self.within.double() / count,
        }
