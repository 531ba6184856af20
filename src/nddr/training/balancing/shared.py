"""Which parameters the tasks share, and the features where they part (for Jacobian descent).

A parameter is *shared* when more than one task's loss depends on it. In the multi-task baseline
that is the one column (the trunk) and its head input; each head is its task's own. In the
K-column variants (NDDR, cross-stitch, sluice) every stage ends in a fusion layer that mixes all
K columns, so every column layer feeds every task: the columns and the fusion layers are shared,
and each task owns its head and its column's head input (the last stage, a shortcut or sluice's
layer selection). The single-task baseline shares nothing. The *features* are the inputs of the
task-specific modules: the tensors where the tasks' computations part.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from torch import Tensor, nn

from nddr.errors import NddrError
from nddr.models import MultiTaskNetwork


@dataclass(frozen=True)
class SharedSplit:
    """The network's trainable parameters split into shared and per-task ones.

    Attributes:
        shared: The parameters more than one task's loss depends on.
        tasks: Task name -> the parameters only that task's loss depends on.
        entries: The task-specific modules whose inputs are the features.
    """

    shared: list[nn.Parameter]
    tasks: dict[str, list[nn.Parameter]]
    entries: list[nn.Module]


def shared_split(network: MultiTaskNetwork, method: str) -> SharedSplit:
    """The shared / task-specific split of ``network`` (see the module docstring); a network
    whose tasks share nothing is a one-line error naming ``method`` and what to use instead."""
    names = network.task_names
    if len(network.columns) == 1:
        entries: list[nn.Module] = [network.heads[name] for name in names]
        owned = {name: list(network.heads[name].parameters()) for name in names}
    elif len(network.fusions):
        entries = list(network.head_inputs)
        owned = {
            name: [*network.heads[name].parameters(), *network.head_input(name).parameters()]
            for name in names
        }
    else:
        raise NddrError(
            f"optim.balancing={method} aggregates the tasks' gradients of shared parameters, and "
            "the single-task baseline shares none: use model.variant=multi or a fusion variant, "
            "or a loss-based method (fixed, uncertainty, dwa)"
        )
    tasks = {name: [p for p in params if p.requires_grad] for name, params in owned.items()}
    own = {id(p) for params in tasks.values() for p in params}
    shared = [p for p in network.parameters() if p.requires_grad and id(p) not in own]
    return SharedSplit(shared, tasks, entries)


@contextmanager
def capture_inputs(modules: Sequence[nn.Module]) -> Iterator[list[Tensor]]:
    """While open, every forward of ``modules`` appends the tensors it is given (in lists and
    tuples too) to the yielded list, each tensor once."""
    captured: list[Tensor] = []
    seen: set[int] = set()

    def record(_module: nn.Module, args: tuple) -> None:
        for tensor in _tensors(args):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                captured.append(tensor)

    handles = [module.register_forward_pre_hook(record) for module in modules]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _tensors(value: object) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
