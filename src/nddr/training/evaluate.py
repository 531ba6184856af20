"""Evaluation: every task's metrics over a whole split, on one process or sharded over ranks."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nddr.errors import NddrError
from nddr.tasks import Task
from nddr.tasks.metrics import UNITS
from nddr.tasks.metrics.normals import ENCODED_PREFIX


@torch.no_grad()
def evaluate(
    network: nn.Module,
    tasks: list[Task],
    batches: Iterable[dict[str, torch.Tensor]],
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, dict[str, float]]:
    """Metrics of each task (paper definitions, :mod:`nddr.tasks.metrics`) over ``batches``.

    Under DDP each rank passes its shard; the metrics reduce over ranks, so every rank returns
    the result of the whole split. Predictions are upsampled to the labels' full resolution. A
    NaN or Inf output is an error rather than NaN or arbitrary metrics.
    """
    metrics = {task.name: task.metric().to(device) for task in tasks}
    nonfinite = torch.zeros(len(tasks), dtype=torch.long, device=device)
    was_training = network.training
    network.eval()
    for batch in batches:
        image = batch["image"].to(device, non_blocking=True)
        if channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            outputs = network(image)
        for index, task in enumerate(tasks):
            output = outputs[task.name].float()
            nonfinite[index] += output.numel() - torch.isfinite(output).sum()
            target = batch[task.name].to(device, non_blocking=True)
            task.update_metric(metrics[task.name], output, target)
    network.train(was_training)
    _refuse_nonfinite(tasks, nonfinite)
    return {
        name: {key: float(value) for key, value in metric.compute().items()}
        for name, metric in metrics.items()
    }


def _refuse_nonfinite(tasks: list[Task], nonfinite: torch.Tensor) -> None:
    """Refuse NaN or Inf outputs (counted per task, summed over DDP ranks so that every rank
    raises): their metrics would be NaN, or silently wrong after an arg-max."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(nonfinite)
    bad = [f"{task.name!r} ({int(count)} values)" for task, count in zip(tasks, nonfinite) if count]
    if bad:
        raise NddrError(
            f"the network's outputs hold NaN or Inf values: {', '.join(bad)}; its weights are "
            "damaged or overflow (under autocast, evaluate in float32), so no metric would be right"
        )


def format_results(results: dict[str, dict[str, float]]) -> str:
    """A text table: one line per task, its metrics side by side, each with its unit
    (:data:`nddr.tasks.metrics.UNITS`: ratios in %, angles in degrees); the normals' ``encoded_*``
    metrics (released code's space) on a line of their own below the true ones."""
    lines = []
    for task, values in results.items():
        encoded = {key: value for key, value in values.items() if key.startswith(ENCODED_PREFIX)}
        true = {key: value for key, value in values.items() if key not in encoded}
        lines.append(f"{task:<14} {_cells(true)}")
        if encoded:
            lines.append(f"{'':<14} {_cells(encoded)}")
    return "\n".join(lines)


def _cells(values: dict[str, float]) -> str:
    return "  ".join(f"{key} {value:.4g}{UNITS.get(key, '')}" for key, value in values.items())
