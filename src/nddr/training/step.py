"""One training step's parts, shared by the training loop and ``nddr bench``."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from nddr.models import MultiTaskNetwork
from nddr.tasks import Task, task_losses
from nddr.training.balancing.base import Balancer, MicroBatchLoss

AMP_DTYPES: dict[str, torch.dtype | None] = {
    "none": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
"""``run.amp`` / ``--amp`` name -> autocast dtype."""


def compute_loss(
    model: nn.Module,
    network: MultiTaskNetwork,
    tasks: list[Task],
    batch: Mapping[str, Tensor],
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    balancer: Balancer | None = None,
) -> MicroBatchLoss:
    """Forward ``batch`` through ``model`` (the network, or its DDP / compiled wrapper) under
    autocast; the unweighted task losses, sluice's penalty, and their total as ``balancer``
    combines them (default: weighted by the tasks' loss weights)."""
    if balancer is None:
        balancer = Balancer({task.name: task.weight for task in tasks})
    image = batch["image"]
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    device_type = image.device.type
    with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
        with balancer.recording():
            outputs = model(image)
        per_task = task_losses(tasks, outputs, batch)
        loss = balancer.combine(per_task)
        auxiliary = network.auxiliary_loss()
        if auxiliary is not None:
            loss = loss + auxiliary
    return MicroBatchLoss(loss, per_task, auxiliary)


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    network: nn.Module,
    grad_clip: float | None = None,
) -> None:
    """Clip (optionally), step through the loss scaler and clear the gradients."""
    if grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
