"""Checks before the first training step, so that a run fails in seconds, not hours in.

:func:`preflight` checks what only shows up late otherwise: a run folder that cannot be written
(the first checkpoint would fail), a disk too full for the checkpoints, samples that do not
load or lack a configured task (a bad file deep in an epoch), and what a config can only be
judged against with its data and network: a crop larger than the images can fill, a batch
norm left one value per channel in training, loss weights that train nothing. Each failure is
one :class:`~nddr.errors.NddrError` line naming the thing and the fix.

The config alone is validated when it is loaded (the pydantic models of :mod:`nddr.training.config`
reject unknown keys, wrong types and out-of-range values).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import secrets
import shlex
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.func import functional_call
from torch.utils.data import Dataset

from nddr.data.base import MultiTaskDataset
from nddr.errors import NddrError
from nddr.training.checkpoint import list_checkpoints
from nddr.training.config import Config
from nddr.training.sampling import AugmentedDataset

MIB = 1 << 20
CHECKPOINT_FACTOR = 2.2
"""Checkpoint bytes per byte of parameters and buffers: weights, SGD momentum, metadata."""
LOG_MARGIN_BYTES = 16 * MIB
"""Room for the rest of a run folder: config, log.jsonl, TensorBoard events, results."""
SAMPLES_PER_SPLIT = 4
"""Samples loaded per split: the first, the last and evenly spread ones between."""


def preflight(
    config: Config,
    train_set: AugmentedDataset,
    test_set: MultiTaskDataset,
    network: nn.Module,
    run_dir: Path | None = None,
) -> None:
    """Check the run folder, the free disk space and a few samples of each split.

    Called by the trainer on rank 0 once data and network are built, before the first step.
    ``network`` is the bare network (not its DDP or compiled wrapper): its size sets the space
    a checkpoint takes. ``run_dir`` is where the run writes (default: the config's
    ``run.out/name``). Raises :class:`NddrError` on the first problem found.
    """
    run_dir = config.run_dir if run_dir is None else run_dir
    check_run_dir(run_dir)
    check_free_space(run_dir, checkpoint_bytes(network), config.run.keep_checkpoints)
    check_loss_weights(config, list(train_set.dataset.targets))
    with _rng_preserved():
        check_split(config, "train", train_set, train_set.dataset)
        check_split(config, "test", test_set, test_set)
        sizes = image_sizes(train_set.dataset)
        smallest = min(sizes, key=lambda size: min(size[:2]))
        check_crop(config, smallest)
        check_whole_images(config, sizes)
        check_batch_norm(config, network, smallest)


def check_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` and write, fsync and remove a probe file in it."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_probe(run_dir / f".nddr-probe-{secrets.token_hex(6)}")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise NddrError(
            f"run folder {str(run_dir)!r} is not writable ({reason}): "
            "pass run.out= a writable folder"
        ) from None


def _write_probe(path: Path) -> None:
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        os.write(descriptor, b"nddr write probe\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
        path.unlink(missing_ok=True)


def checkpoint_bytes(network: nn.Module) -> int:
    """The estimated size of one checkpoint of ``network`` on disk."""
    tensors = [*network.parameters(), *network.buffers()]
    return round(
        CHECKPOINT_FACTOR * sum(tensor.numel() * tensor.element_size() for tensor in tensors)
    )


def free_bytes(path: Path) -> int:
    """Free bytes on the file system of ``path`` (tests replace this function)."""
    return shutil.disk_usage(path).free


def check_free_space(run_dir: Path, checkpoint_size: int, keep: int) -> None:
    """Enough free space for the checkpoints still to come, plus logs.

    A new checkpoint is written before the older ones beyond ``keep`` are pruned, so a run
    holds up to ``keep + 1`` at once; those already in ``run_dir`` (a resume) are on disk.
    """
    copies = max(keep + 1 - len(list_checkpoints(run_dir)), 1)
    needed = copies * checkpoint_size + LOG_MARGIN_BYTES
    free = free_bytes(run_dir)
    if free < needed:
        raise NddrError(
            f"run folder {str(run_dir)!r} has {_mib(free)} free but the run needs {_mib(needed)} "
            f"({copies} checkpoints of {_mib(checkpoint_size)}, a new one is written before an "
            "old one is pruned, plus logs): free space, or set run.out= to a folder on another disk"
        )


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def sample_indices(length: int, count: int = SAMPLES_PER_SPLIT) -> list[int]:
    """First, last and evenly spread indices of a split of ``length`` samples (deterministic)."""
    if length <= 0:
        return []
    steps = max(count - 1, 1)
    return sorted({round(step * (length - 1) / steps) for step in range(count)})


def check_split(config: Config, split: str, loader: Dataset, dataset: MultiTaskDataset) -> None:
    """Load a few samples of ``split`` through ``loader`` (the dataset, or its augmenting
    wrapper) and check they hold every configured task; ``dataset`` is the raw one."""
    tasks = config.data.tasks or list(dataset.targets)
    missing = [task for task in tasks if task not in dataset.targets]
    if missing:
        raise NddrError(
            f"dataset {config.data.name} split {split} has no target {missing[0]!r} "
            f"(data.tasks): it has {', '.join(dataset.targets) or 'none'}; fix data.tasks"
        )
    for index in sample_indices(len(dataset)):
        sample = _load(config, split, loader, dataset, index)
        absent = [task for task in tasks if task not in sample]
        if absent:
            raise NddrError(
                f"{_sample(config, split, dataset, index)} has no {absent[0]!r} target: "
                f"run `{check_command(config, split)}`"
            )


def _load(
    config: Config, split: str, loader: Dataset, dataset: MultiTaskDataset, index: int
) -> Mapping[str, Any]:
    """Sample ``index`` of ``loader``; a failure becomes an error naming split, index and file."""
    try:
        return loader[index]
    except NddrError as error:
        raise NddrError(
            f"dataset {config.data.name} split {split} sample {index}: {error}"
        ) from None
    except Exception as error:
        raise NddrError(
            f"{_sample(config, split, dataset, index)} could not be loaded "
            f"({type(error).__name__}: {_first_line(error)}): run `{check_command(config, split)}`"
        ) from None


def _sample(config: Config, split: str, dataset: MultiTaskDataset, index: int) -> str:
    """How an error names a sample: dataset, index, split and the source the dataset gives."""
    try:
        source = f" ({dataset.source(index)})"
    except Exception:
        source = ""
    return f"dataset {config.data.name} sample {index} of split {split}{source}"


def check_command(config: Config, split: str) -> str:
    """The ``nddr data check`` command that checks every sample of ``split`` as configured."""
    data = config.data
    words = ["nddr", "data", "check", data.name]
    if data.root is not None:
        words.append(str(data.root))
    words += ["--split", split]
    if data.tasks:
        words += ["--tasks", ",".join(data.tasks)]
    for key, value in data.options.items():
        words += ["--set", f"{key}={value if isinstance(value, str) else repr(value)}"]
    return shlex.join(words)


def check_loss_weights(config: Config, tasks: list[str]) -> None:
    """At least one task has a loss weight above 0 (unnamed tasks weigh 1)."""
    weights = config.optim.loss_weights
    if tasks and all(weights.get(task, 1.0) == 0 for task in tasks):
        raise NddrError(
            f"optim.loss_weights gives every task ({', '.join(tasks)}) weight 0, so nothing "
            "would be trained: give at least one task a weight > 0"
        )


def image_sizes(dataset: MultiTaskDataset) -> list[tuple[int, int, int]]:
    """(height, width, index) of the sampled training images, as loaded (before augmentation)."""
    sizes = []
    for index in sample_indices(len(dataset)):
        height, width = np.asarray(dataset.load_raw(index)["image"]).shape[:2]
        sizes.append((int(height), int(width), index))
    return sizes


def largest_crop(config: Config, height: int, width: int) -> int:
    """The largest crop an image of ``height`` x ``width`` fills once scaled by the top of
    ``data.scale_range``: a larger one is padding at every scale, never the image."""
    top = config.data.scale_range[1] if config.data.scale_range else 1.0
    return math.floor(min(height, width) * top)


def check_crop(config: Config, smallest: tuple[int, int, int]) -> None:
    """``data.crop_size`` is at most :func:`largest_crop` of the smallest sampled image."""
    crop = config.data.crop_size
    height, width, index = smallest
    limit = largest_crop(config, height, width)
    if crop is not None and crop > limit:
        scale = config.data.scale_range[1] if config.data.scale_range else 1.0
        raise NddrError(
            f"data.crop_size {crop} is larger than the {config.data.name} train images can fill: "
            f"sample {index} is {height} x {width}, at most {limit} px a side after scaling by "
            f"{scale:g} (the top of data.scale_range); set data.crop_size <= {limit} or null"
        )


def check_whole_images(config: Config, sizes: list[tuple[int, int, int]]) -> None:
    """Without a crop, the images of a micro-batch must come out one size to be stacked: no
    random scale, and images of one size, unless each micro-batch holds one image."""
    data = config.data
    if data.crop_size is not None or micro_batch(config) == 1:
        return
    if data.scale_range is not None and data.scale_range[0] != data.scale_range[1]:
        raise NddrError(
            f"data.crop_size null keeps each image at its random scale (data.scale_range "
            f"{list(data.scale_range)}), so micro-batches of {micro_batch(config)} images cannot "
            "be stacked: set data.crop_size, or data.scale_range=null"
        )
    first = sizes[0]
    other = next((size for size in sizes if size[:2] != first[:2]), None)
    if other is not None:
        raise NddrError(
            f"data.crop_size null batches whole images, but {data.name} train sample {first[2]} "
            f"is {first[0]} x {first[1]} and sample {other[2]} {other[0]} x {other[1]}: set "
            "data.crop_size"
        )


def micro_batch(config: Config) -> int:
    """Images per process in one forward: the global batch over processes and accumulation."""
    processes = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    return max(config.data.batch_size // (processes * config.optim.accumulate), 1)


def check_batch_norm(config: Config, network: nn.Module, smallest: tuple[int, int, int]) -> None:
    """No batch norm sees a single value per channel in training (a micro-batch of one image
    whose feature map there is 1 x 1): one forward of the real input shape on the meta device
    (no memory, no compute) finds it before the first step does."""
    if config.model.freeze_bn:
        return
    height, width, _ = smallest
    if config.data.crop_size is not None:
        height = width = config.data.crop_size
    elif config.data.scale_range:
        low = config.data.scale_range[0]
        height, width = max(round(height * low), 1), max(round(width * low), 1)
    images = micro_batch(config)
    try:
        _meta_forward(network, torch.empty(images, 3, height, width, device="meta"))
    except ValueError as error:
        if "more than 1 value per channel" not in str(error):
            return
        raise NddrError(
            f"a batch norm of the network would see one value per channel: each process's "
            f"micro-batch is {images} image(s) (data.batch_size {config.data.batch_size} over "
            f"processes x optim.accumulate) of {height} x {width} px (data.crop_size), whose "
            "features shrink to 1 x 1 at a batch norm; raise data.batch_size or "
            "data.crop_size, or set model.freeze_bn=true"
        ) from None
    except Exception:
        return  # a forward the meta device cannot run says nothing about batch norm


def _meta_forward(network: nn.Module, images: torch.Tensor) -> None:
    """``network(images)`` in training mode with every parameter and buffer on the meta device;
    the network itself (weights, statistics, modes) is left as it was."""
    state = {
        name: torch.empty_like(tensor, device="meta")
        for name, tensor in [*network.named_parameters(), *network.named_buffers()]
    }
    modes = {module: module.training for module in network.modules()}
    network.train()
    try:
        with torch.no_grad():
            functional_call(network, state, (images,))
    finally:
        for module, training in modes.items():
            module.train(training)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


@contextlib.contextmanager
def _rng_preserved() -> Iterator[None]:
    """Leave Python's, NumPy's and torch's global random states as they were: only rank 0
    runs the checks, and the ranks must keep drawing the same numbers."""
    python, numpy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
