"""Evaluation: every task's metrics over a whole split, on one process or sharded over ranks."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nddr.tasks import Task


@torch.no_grad()
def evaluate(
    network: nn.Module,
    tasks: list[Task],
    batches: Iterable[dict[str, torch.Tensor]],
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics of each task (paper definitions, :mod:`nddr.metrics`) over ``batches``.

    Under DDP each rank passes its shard; the metrics reduce over ranks, so every rank returns
    the result of the whole split. Predictions are upsampled to the labels' full resolution.
    """
    metrics = {task.name: task.metric().to(device) for task in tasks}
    was_training = network.training
    network.eval()
    for batch in batches:
        image = batch["image"].to(device, non_blocking=True)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            outputs = network(image)
        for task in tasks:
            target = batch[task.name].to(device, non_blocking=True)
            size = tuple(target.shape[-2:]) if task.dense else None
            metrics[task.name].update(task.predict(outputs[task.name].float(), size), target)
    network.train(was_training)
    return {
        name: {key: float(value) for key, value in metric.compute().items()}
        for name, metric in metrics.items()
    }


def format_results(results: dict[str, dict[str, float]]) -> str:
    """A text table: one line per task, its metrics side by side."""
    lines = []
    for task, values in results.items():
        cells = "  ".join(f"{key} {value:.4g}" for key, value in values.items())
        lines.append(f"{task:<14} {cells}")
    return "\n".join(lines)
