"""Tasks: what is specific to each (paper §4, §5.2): head size, loss, prediction, metric, picture.

A task is built from a dataset's :class:`~nddr.data.base.TargetSpec` (:func:`build_tasks`) and
names the target key it reads; a task's options (``optim.task_options``, e.g. the normals'
``space``) are keyword arguments of its class. Dense outputs (``N x C x h x w``, at the
network's output stride) are upsampled bilinearly to the target's size, for the loss as for the
metric, so training and evaluation compare at the labels' full resolution. Torch is imported where
a task computes, so the task kinds and their metrics' directions load without it (``--help``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nddr.errors import NddrError, unknown_choice
from nddr.tasks.base import Task, resize_output
from nddr.tasks.dense import Depth, Saliency, Segmentation, SurfaceNormals
from nddr.tasks.image_level import Age, Classification, Regression

if TYPE_CHECKING:
    from torch import Tensor

    from nddr.data.base import TargetSpec


TASKS: dict[str, type[Task]] = {
    task.kind: task
    for task in (Segmentation, SurfaceNormals, Depth, Saliency, Classification, Age, Regression)
}


def build_task(
    name: str, spec: TargetSpec, weight: float = 1.0, options: Mapping[str, Any] | None = None
) -> Task:
    """The task of kind ``spec.kind`` reading target ``name``, with its ``options``."""
    if spec.kind not in TASKS:
        raise unknown_choice("task kind", spec.kind, TASKS)
    task_type = TASKS[spec.kind]
    options = dict(options or {})
    accepted = task_type.option_defaults()
    for key in options:
        if key not in accepted:
            takes = f"it takes {', '.join(accepted)}" if accepted else "it takes none"
            raise NddrError(f"task {name!r} ({spec.kind}) has no option {key!r}: {takes}")
    return task_type(name, spec.num_classes, weight, spec.class_names, **options)


def build_tasks(
    targets: Mapping[str, TargetSpec],
    weights: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Task]:
    """One task per dataset target, in the dataset's order, with optional loss weights and
    options (task name -> options of that task)."""
    weights, options = dict(weights or {}), dict(options or {})
    return [
        build_task(name, spec, weights.get(name, 1.0), options.get(name))
        for name, spec in targets.items()
    ]


def task_losses(
    tasks: list[Task], outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Each task's unweighted loss, in the tasks' order."""
    return {task.name: task.loss(outputs[task.name], batch[task.name]) for task in tasks}


def total_loss(
    tasks: list[Task], outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of the task losses and each task's unweighted loss."""
    import torch

    losses = task_losses(tasks, outputs, batch)
    total = torch.stack([task.weight * losses[task.name] for task in tasks]).sum()
    return total, losses


__all__ = [
    "TASKS",
    "Age",
    "Classification",
    "Depth",
    "Regression",
    "Saliency",
    "Segmentation",
    "SurfaceNormals",
    "Task",
    "build_task",
    "build_tasks",
    "resize_output",
    "task_losses",
    "total_loss",
]
