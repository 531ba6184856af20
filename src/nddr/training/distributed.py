"""Processes under ``torchrun``: who am I, who writes files, and reductions across ranks.

A rank that dies (killed, out of memory) ends the run: ``torchrun`` sees the exit, stops the
other ranks and reports the failed one. A rank that hangs instead would leave the others
waiting in a collective; ``NDDR_DIST_TIMEOUT`` (seconds, default 600, torch's NCCL default)
bounds that wait for every backend, so the waiting ranks fail with a timeout error instead of
gloo's default of 30 minutes. Raise it if rank 0 legitimately takes longer between two
collectives (building a large dataset index, writing a checkpoint to a slow disk).
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from nddr.errors import NddrError

TIMEOUT_VARIABLE = "NDDR_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Context:
    """This process's place in the run: rank, world size and device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes files (logs, checkpoints, plots)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
    one this machine lacks is a one-line error naming the devices it has."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NddrError(
            f"device {name!r} is not a device: use auto, cpu, cuda, cuda:N or mps"
        ) from None
    available = available_devices()
    wanted = str(device) if device.type == "cuda" and device.index is not None else device.type
    if wanted not in available:
        kind = "CUDA" if device.type == "cuda" else device.type.upper()
        which = f" {device.index}" if device.index is not None and device.type in available else ""
        raise NddrError(
            f"device {name!r} (run.device / --device): this machine has no {kind} device{which}; "
            f"it has {', '.join(available)}: use auto or one of those"
        )
    return device


def available_devices() -> list[str]:
    """The devices this machine can run on: the CPU, each CUDA device, the MPS device."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda", *(f"cuda:{index}" for index in range(torch.cuda.device_count()))]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def collective_timeout() -> datetime.timedelta:
    """How long a collective may wait for the other ranks: ``$NDDR_DIST_TIMEOUT`` seconds."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise NddrError(
            f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds: set it to a positive "
            f"number, e.g. {DEFAULT_TIMEOUT_S:.0f}, or unset it"
        )
    return datetime.timedelta(seconds=seconds)


def setup(device: str = "auto") -> Context:
    """Join the process group ``torchrun`` describes in the environment (NCCL on CUDA, gloo
    otherwise), or run alone when there is none; pick the device. Collectives time out after
    :func:`collective_timeout`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device)
    if target.type == "cuda":
        index = target.index if target.index is not None else local_rank
        target = torch.device("cuda", index)
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if target.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=collective_timeout())
    return Context(rank, world_size, local_rank, target)


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def mean_across(values: dict[str, float], context: Context) -> dict[str, float]:
    """The mean of each value over the ranks (for logging losses of the global batch)."""
    if not context.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[key] for key in keys], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return {key: float(value) / context.world_size for key, value in zip(keys, tensor.tolist())}


def max_across(values: Tensor, context: Context) -> Tensor:
    """The elementwise maximum of an integer tensor over the ranks (itself when alone)."""
    if context.distributed:
        values = values.to(context.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def average_gradients(parameters: Iterable[Tensor], context: Context) -> None:
    """Average the gradients of ``parameters`` over the ranks in one all-reduce: what DDP does
    for the network, for gradients it does not see (a balancing method's own parameters, and
    the shared parameters' aggregated Jacobians)."""
    if not context.distributed:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    dist.all_reduce(flat)
    flat /= context.world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()
