"""Image-level tasks: accuracy (gender, digits) and age errors (paper §5.2, IMDB-WIKI)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class AccuracyMetric(Metric):
    """Top-1 accuracy in %; predictions are class indices (N,) or scores (N x C)."""

    full_state_update = False
    higher_is_better = True
    units: ClassVar[dict[str, str]] = {"accuracy": "%"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        if prediction.dim() == target.dim() + 1:
            prediction = prediction.argmax(dim=1)
        self.correct += (prediction == target).sum()
        self.count += target.numel()

    def compute(self) -> dict[str, Tensor]:
        return {"accuracy": 100.0 * self.correct.double() / self.count.clamp(min=1)}


def expected_age(logits: Tensor) -> Tensor:
    """The predicted age sum_k p(k) k over the classes k = 0..C-1 (paper §5.2)."""
    ages = torch.arange(logits.shape[1], device=logits.device, dtype=torch.float32)
    return logits.float().softmax(dim=1) @ ages


class AgeMetric(Metric):
    """Mean and median absolute error in years between expected and true age (exact median)."""

    full_state_update = False
    higher_is_better = False
    units: ClassVar[dict[str, str]] = {"mean_ae": " years", "median_ae": " years"}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("errors", [], dist_reduce_fx="cat")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """``prediction``: ages (N,), or scores (N x C) turned into the expected age."""
        if prediction.dim() == 2:
            prediction = expected_age(prediction)
        self.errors.append((prediction.double() - target.double()).abs())

    def compute(self) -> dict[str, Tensor]:
        if isinstance(self.errors, list) and not self.errors:
            nan = torch.tensor(math.nan, dtype=torch.float64)
            return {"mean_ae": nan, "median_ae": nan}
        errors = dim_zero_cat(self.errors).sort().values
        middle = errors.numel() // 2
        median = errors[middle] if errors.numel() % 2 else (errors[middle - 1] + errors[middle]) / 2
        return {"mean_ae": errors.mean(), "median_ae": median}
