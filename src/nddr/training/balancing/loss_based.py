"""Loss-based balancing: the paper's fixed weights, uncertainty weighting and dynamic weight
average. Each multiplies the task losses by weights and backpropagates their sum."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from nddr.errors import NddrError
from nddr.training.balancing.base import Balancer, BalancingSetup


class FixedWeights(Balancer):
    """The paper's: the sum of the task losses weighted by ``optim.loss_weights`` (§4.2)."""


class UncertaintyWeighting(Balancer):
    """Homoscedastic uncertainty weighting (Kendall et al., CVPR 2018, eq. 7):
    ``sum_k exp(-s_k) w_k L_k / 2 + s_k / 2``, ``s_k = log sigma_k^2`` learned with the network.

    The log-variances start at ``init`` and train in the optimizer's ``balancing`` group
    (:func:`nddr.training.optimizer.balancing_group`): the base learning rate and its schedule,
    no weight decay.
    """

    def __init__(
        self, task_weights: Mapping[str, float], *, init: float, device: torch.device
    ) -> None:
        super().__init__(task_weights)
        if not math.isfinite(init):
            raise NddrError(
                f"optim.balancing_options.init = {init!r} is not finite: give a log-variance, "
                "e.g. 0.0"
            )
        values = torch.full((len(self.task_weights),), float(init), device=device)
        self.log_variances = torch.nn.Parameter(values)

    @classmethod
    def build(
        cls, task_weights: Mapping[str, float], options: Mapping[str, Any], setup: BalancingSetup
    ) -> UncertaintyWeighting:
        return cls(task_weights, device=setup.device, **options)

    def parameters(self) -> list[Tensor]:
        return [self.log_variances]

    def weights(self) -> dict[str, float]:
        precisions = (0.5 * torch.exp(-self.log_variances.detach())).tolist()
        return {
            name: weight * precision
            for (name, weight), precision in zip(self.task_weights.items(), precisions)
        }

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        index = {name: k for k, name in enumerate(self.task_weights)}
        terms = [
            0.5 * torch.exp(-self.log_variances[index[name]]) * self.task_weights[name] * loss
            + 0.5 * self.log_variances[index[name]]
            for name, loss in losses.items()
        ]
        return torch.stack(terms).sum()

    def logged(self) -> dict[str, Any]:
        variances = self.log_variances.detach().tolist()
        return {**super().logged(), "log_variances": dict(zip(self.task_weights, variances))}

    def state_dict(self) -> dict[str, Any]:
        return {"log_variances": self.log_variances.detach().cpu().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            self.log_variances.copy_(state["log_variances"])


class DynamicWeightAverage(Balancer):
    """Dynamic weight average (Liu et al., CVPR 2019, eq. 7): ``lambda_k = K softmax_k(r_k / T)``
    with ``r_k`` task k's mean loss over the last window over its mean over the window before.

    Liu et al. average over epochs; here a window is ``window`` optimizer steps (``None``: one
    epoch of the training set, ``steps_per_epoch``). The first two windows train with
    ``lambda_k = 1``. Window means are of every process's losses (``reduce``: the mean over
    ranks), so all processes use the same weights.
    """

    def __init__(
        self,
        task_weights: Mapping[str, float],
        *,
        temperature: float,
        window: int | None,
        steps_per_epoch: int,
        reduce: Callable[[dict[str, float]], dict[str, float]],
    ) -> None:
        super().__init__(task_weights)
        if not temperature > 0 or not math.isfinite(temperature):
            raise NddrError(
                f"optim.balancing_options.temperature = {temperature!r} must be a number > 0, "
                "e.g. 2.0 (Liu et al.)"
            )
        if window is not None and window < 1:
            raise NddrError(
                f"optim.balancing_options.window = {window!r} must be a number of steps >= 1, "
                "or null for one epoch"
            )
        self.temperature = float(temperature)
        self.window = window if window is not None else max(steps_per_epoch, 1)
        self.reduce = reduce
        self.lambdas = [1.0] * len(self.task_weights)
        self.sums = [0.0] * len(self.task_weights)
        self.count = 0
        self.history: list[list[float]] = []

    @classmethod
    def build(
        cls, task_weights: Mapping[str, float], options: Mapping[str, Any], setup: BalancingSetup
    ) -> DynamicWeightAverage:
        return cls(
            task_weights, steps_per_epoch=setup.steps_per_epoch, reduce=setup.reduce, **options
        )

    def weights(self) -> dict[str, float]:
        return {
            name: weight * factor
            for (name, weight), factor in zip(self.task_weights.items(), self.lambdas)
        }

    def end_step(self, losses: Mapping[str, float]) -> None:
        if not set(self.task_weights) <= set(losses):
            return  # a skipped step (non-finite loss): no loss to average
        for k, name in enumerate(self.task_weights):
            self.sums[k] += losses[name]
        self.count += 1
        if self.count < self.window:
            return
        local = {name: total / self.count for name, total in zip(self.task_weights, self.sums)}
        means = self.reduce(local)
        self.history = [*self.history, [means[name] for name in self.task_weights]][-2:]
        self.sums, self.count = [0.0] * len(self.task_weights), 0
        if len(self.history) == 2:
            ratios = torch.tensor(self.history[1], dtype=torch.float64) / torch.tensor(
                self.history[0], dtype=torch.float64
            )
            self.lambdas = (len(ratios) * torch.softmax(ratios / self.temperature, 0)).tolist()

    def logged(self) -> dict[str, Any]:
        return {**super().logged(), "window_step": self.count}

    def state_dict(self) -> dict[str, Any]:
        return {
            "lambdas": list(self.lambdas),
            "sums": list(self.sums),
            "count": self.count,
            "history": [list(row) for row in self.history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.lambdas = [float(value) for value in state["lambdas"]]
        self.sums = [float(value) for value in state["sums"]]
        self.count = int(state["count"])
        self.history = [[float(value) for value in row] for row in state["history"]]
