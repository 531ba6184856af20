"""Image-level regression: absolute and squared errors pooled over the evaluation set."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric

from nddr.errors import NddrError


class RegressionMetric(Metric):
    """Mean absolute error (``mae``) and root mean squared error (``rmse``), in the target's unit.

    Sums of errors are kept (summed across processes under DDP), so both are exact over the set.
    """

    full_state_update = False
    higher_is_better = False
    units: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("abs_sum", "sq_sum"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Add a batch of predicted and true values (both (N,))."""
        if prediction.shape != target.shape:
            raise NddrError(
                f"regression prediction {tuple(prediction.shape)} and target "
                f"{tuple(target.shape)} differ in shape: predict one value per image"
            )
        error = prediction.double() - target.double()
        self.abs_sum += error.abs().sum()
        self.sq_sum += error.square().sum()
        self.count += error.numel()

    def compute(self) -> dict[str, Tensor]:
        if self.count == 0:
            nan = torch.tensor(float("nan"), dtype=torch.float64)
            return {"mae": nan, "rmse": nan}
        count = self.count.double()
        return {"mae": self.abs_sum / count, "rmse": torch.sqrt(self.sq_sum / count)}
