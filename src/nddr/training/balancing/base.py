"""The one interface of the loss-balancing methods (``optim.balancing``).

A balancer turns a micro-batch's task losses into what is backpropagated. A loss-based method
(:mod:`~nddr.training.balancing.loss_based`) weights the losses: :meth:`Balancer.combine` is the
loss to backpropagate. A gradient method (:mod:`~nddr.training.balancing.jacobian`) aggregates the
tasks' gradients of the shared parameters instead: :meth:`Balancer.combine` is then only the
weighted sum that is logged, and :meth:`Balancer.backward` does the backward pass. Its state
(learned log-variances, loss history) is saved in every checkpoint, so a resumed run continues
exactly; :meth:`Balancer.logged` is what ``log.jsonl`` and TensorBoard record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

if TYPE_CHECKING:
    from nddr.models import MultiTaskNetwork
    from nddr.training.balancing.registry import BalancingEntry


@dataclass(frozen=True)
class BalancingSetup:
    """What a method may need beyond its options.

    Attributes:
        entry: The method's registry entry.
        network: The network trained (its shared parameters, for the gradient methods).
        device: Where the network is (for learned weights).
        steps_per_epoch: Optimizer steps in one pass over the training set.
        reduce: The mean of a dict of floats over the processes (identity when alone).
    """

    entry: BalancingEntry
    network: MultiTaskNetwork
    device: torch.device
    steps_per_epoch: int = 1
    reduce: Callable[[dict[str, float]], dict[str, float]] = dict


@dataclass
class MicroBatchLoss:
    """One micro-batch's losses.

    Attributes:
        total: What is logged and checked for NaN / Inf: :meth:`Balancer.combine` of the task
            losses plus ``auxiliary``.
        tasks: Each task's unweighted loss.
        auxiliary: The fusion layers' extra loss (sluice's penalty), or ``None``.
    """

    total: Tensor
    tasks: dict[str, Tensor]
    auxiliary: Tensor | None = None


class Balancer:
    """Combine the task losses; by default their sum weighted by ``optim.loss_weights``.

    ``task_weights`` maps each task, in the network's order, to its ``optim.loss_weights``
    weight; the methods' own weights multiply it.
    """

    gradient_based: ClassVar[bool] = False

    def __init__(self, task_weights: Mapping[str, float]) -> None:
        self.task_weights = dict(task_weights)

    @classmethod
    def build(
        cls, task_weights: Mapping[str, float], options: Mapping[str, Any], setup: BalancingSetup
    ) -> Balancer:
        """The balancer for an experiment: the method's ``options`` (defaults filled in)."""
        return cls(task_weights, **options)

    def parameters(self) -> list[Tensor]:
        """Tensors trained with the network (by the same optimizer); none by default."""
        return []

    def weights(self) -> dict[str, float]:
        """Each task's weight on its loss in the current step (``optim.loss_weights`` included)."""
        return dict(self.task_weights)

    def recording(self) -> AbstractContextManager:
        """Wraps the network's forward; a gradient method records its features there."""
        return nullcontext()

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """The loss of one micro-batch from its unweighted task losses."""
        weights = self.weights()
        return torch.stack([weights[name] * loss for name, loss in losses.items()]).sum()

    def backward(self, loss: MicroBatchLoss, scaler: torch.amp.GradScaler, accumulate: int) -> None:
        """Backpropagate one of ``accumulate`` micro-batches: its total over ``accumulate``,
        scaled by the AMP loss scaler."""
        scaler.scale(loss.total / accumulate).backward()

    def end_step(self, losses: Mapping[str, float]) -> None:
        """Take the finished step's mean unweighted task losses (of this process)."""

    def logged(self) -> dict[str, Any]:
        """What the training log records at a log step: the task weights."""
        return {"weights": self.weights()}

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (checkpoints are read with ``weights_only``)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (a resumed run continues exactly)."""
