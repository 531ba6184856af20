"""Gradient-based balancing through torchjd: Jacobian descent on the shared parameters.

Per micro-batch, ``torchjd.autojac.mtl_backward`` gives each task's head (and head input) the
gradient of its own loss and fills the shared parameters' ``.jac`` with one gradient row per task
(:mod:`~nddr.training.balancing.shared` says which parameters are shared); ``jac_to_grad`` then
combines the rows with the method's torchjd aggregator (UPGrad, MGDA, PCGrad, CAGrad, Nash-MTL,
...) into their ``.grad``. The rows are of the weighted losses ``w_k L_k`` (``optim.loss_weights``).
The aggregators that take a preference vector (UPGrad, DualProj, Aligned-MTL) get ones: the sum,
as ``fixed``, so that without conflicting gradients they step as ``fixed`` does (torchjd's
default, the mean, would step 1 / K as far).

- Gradient accumulation: each micro-batch is aggregated on its own; the aggregates add up.
- AMP: the losses are scaled by the loss scaler (fp16) and by ``1 / accumulate`` before the
  backward, as for ``fixed``; the aggregator sees the Jacobian with that factor divided out and
  its result is multiplied back, so scale-sensitive methods (Nash-MTL, MGDA's norms) see the
  true gradients. A Jacobian with Inf / NaN (an fp16 overflow) is summed instead, so that the
  scaler skips the step as usual. Under autocast the task rows are differentiated one after
  another instead of in one ``torch.vmap``, which fails on autocast's mixed dtypes.
- DDP: each process aggregates its own micro-batches; the trainer then averages the gradients
  over the processes (:func:`nddr.training.distributed.average_gradients`).
- Sluice's penalty (the auxiliary loss) is not a task: its gradient is added as it is.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from nddr.errors import NddrError
from nddr.models import MultiTaskNetwork
from nddr.training.balancing.base import Balancer, BalancingSetup, MicroBatchLoss
from nddr.training.balancing.shared import capture_inputs, shared_split


def _torchjd() -> tuple[Any, Any]:
    try:
        from torchjd import aggregation, autojac
    except ImportError:
        raise NddrError(
            "the gradient balancing methods need torchjd: pip install 'nddr[balancing]'"
        ) from None
    return aggregation, autojac


def _reduced_precision(features: list[Tensor]) -> bool:
    """Features from autocast (bf16 / fp16): torch.vmap over their backward fails on the mixed
    dtypes, so the rows are then differentiated one after another."""
    return any(feature.dtype in (torch.float16, torch.bfloat16) for feature in features)


class _Rescaled(nn.Module):
    """An aggregator that sees the Jacobian over ``scale`` and returns its result times ``scale``
    (the loss scaling undone for the aggregation only)."""

    def __init__(self, aggregator: nn.Module, scale: float) -> None:
        super().__init__()
        self.aggregator, self.scale = aggregator, scale

    def forward(self, matrix: Tensor) -> Tensor:
        if not torch.isfinite(matrix).all():
            return matrix.sum(0)
        if self.scale == 1.0:
            return self.aggregator(matrix)
        return self.aggregator(matrix / self.scale) * self.scale


class JacobianDescent(Balancer):
    """Aggregate the tasks' gradients of the shared parameters with a torchjd aggregator."""

    gradient_based = True

    def __init__(
        self,
        task_weights: Mapping[str, float],
        *,
        method: str,
        aggregator: str,
        options: Mapping[str, Any],
        network: MultiTaskNetwork,
    ) -> None:
        super().__init__(task_weights)
        aggregation, self._autojac = _torchjd()
        kwargs = dict(options)
        parameters = inspect.signature(getattr(aggregation, aggregator)).parameters
        if "n_tasks" in parameters:
            kwargs["n_tasks"] = len(self.task_weights)
        if "pref_vector" in parameters:
            # The sum, as ``fixed``: without conflict the step is fixed's, not 1 / K of it.
            device = next(network.parameters()).device  # torchjd does not move it
            kwargs["pref_vector"] = torch.ones(len(self.task_weights), device=device)
        try:
            self.aggregator = getattr(aggregation, aggregator)(**kwargs)
        except ImportError as error:
            raise NddrError(
                f"optim.balancing={method} needs torchjd's optional solvers ({error}): "
                "pip install 'nddr[balancing]'"
            ) from None
        self.split = shared_split(network, method)
        self.features: list[Tensor] = []
        self.aggregation_weights = [1.0] * len(self.task_weights)
        if hasattr(self.aggregator, "weighting"):
            self.aggregator.weighting.register_forward_hook(self._keep_weights)

    @classmethod
    def build(
        cls, task_weights: Mapping[str, float], options: Mapping[str, Any], setup: BalancingSetup
    ) -> JacobianDescent:
        return cls(
            task_weights,
            method=setup.entry.name,
            aggregator=setup.entry.aggregator,
            options=options,
            network=setup.network,
        )

    def _keep_weights(self, _module: nn.Module, _inputs: tuple, weights: Tensor) -> None:
        self.aggregation_weights = weights.detach().to(torch.float64).cpu().tolist()

    @contextmanager
    def _record(self):
        with capture_inputs(self.split.entries) as captured:
            yield
        self.features = captured

    def recording(self) -> AbstractContextManager:
        return self._record()

    def weights(self) -> dict[str, float]:
        """``optim.loss_weights`` times the aggregator's weight of each task's row in the last
        aggregation (1 before the first)."""
        return {
            name: weight * factor
            for (name, weight), factor in zip(self.task_weights.items(), self.aggregation_weights)
        }

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """The weighted sum of the losses, for the log: the update is :meth:`backward`'s."""
        return torch.stack([self.task_weights[name] * loss for name, loss in losses.items()]).sum()

    def backward(self, loss: MicroBatchLoss, scaler: torch.amp.GradScaler, accumulate: int) -> None:
        scale = (scaler.get_scale() if scaler.is_enabled() else 1.0) / accumulate
        if loss.auxiliary is not None:
            scaler.scale(loss.auxiliary / accumulate).backward(retain_graph=True)
        losses = [
            scaler.scale(self.task_weights[name] * value / accumulate)
            for name, value in loss.tasks.items()
        ]
        features, self.features = self.features, []
        self._autojac.mtl_backward(
            losses,
            features=features,
            tasks_params=[self.split.tasks[name] for name in loss.tasks],
            shared_params=self.split.shared,
            parallel_chunk_size=1 if _reduced_precision(features) else None,
        )
        shared = [p for p in self.split.shared if hasattr(p, "jac")]
        self._autojac.jac_to_grad(shared, _Rescaled(self.aggregator, scale))

    def state_dict(self) -> dict[str, Any]:
        """The last weights and, for Nash-MTL, the state torchjd's weighting carries from step to
        step (its step count, last solution and normalisation)."""
        state: dict[str, Any] = {"aggregation_weights": list(self.aggregation_weights)}
        if type(self.aggregator).__name__ == "NashMTL":
            weighting = self.aggregator.weighting
            state["nash"] = {
                "step": float(weighting.step),
                "prvs_alpha": torch.from_numpy(weighting.prvs_alpha.copy()),
                "normalization_factor": torch.from_numpy(weighting.normalization_factor.copy()),
            }
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.aggregation_weights = [float(value) for value in state["aggregation_weights"]]
        if "nash" in state:
            weighting = self.aggregator.weighting
            weighting.step = float(state["nash"]["step"])
            weighting.prvs_alpha = state["nash"]["prvs_alpha"].numpy().copy()
            weighting.normalization_factor = state["nash"]["normalization_factor"].numpy().copy()
            if weighting.step:
                weighting._init_optim_problem()
