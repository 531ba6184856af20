"""The balancer of an experiment: ``optim.balancing`` and its options, built for a network."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from nddr.models import MultiTaskNetwork
from nddr.tasks import Task
from nddr.training.balancing.base import Balancer, BalancingSetup
from nddr.training.balancing.registry import balancing_entry, balancing_options

if TYPE_CHECKING:
    from nddr.training.config import OptimConfig


def build_balancer(
    optim: OptimConfig,
    tasks: list[Task],
    network: MultiTaskNetwork,
    *,
    device: torch.device,
    steps_per_epoch: int = 1,
    reduce: Callable[[dict[str, float]], dict[str, float]] = dict,
) -> Balancer:
    """The :class:`Balancer` of ``optim.balancing`` for ``tasks`` (their loss weights) on
    ``network``; ``steps_per_epoch`` sizes DWA's default window, ``reduce`` averages a dict of
    floats over the processes (DWA's window means)."""
    entry = balancing_entry(optim.balancing)
    options = balancing_options(optim.balancing, optim.balancing_options)
    setup = BalancingSetup(entry, network, device, steps_per_epoch, reduce)
    task_weights = {task.name: task.weight for task in tasks}
    return entry.balancer_class().build(task_weights, options, setup)
