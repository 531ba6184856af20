"""Checks before the first training step, so that a run fails in seconds, not hours in.

:func:`preflight` checks what only shows up late otherwise: a run folder that cannot be written
(the first checkpoint would fail), a disk too full for the checkpoints, and samples that do not
load or lack a configured task (a bad file deep in an epoch). Each failure is one
:class:`~nddr.errors.NddrError` line naming the thing and the fix.

The config itself needs no check here: it is validated when it is loaded (the pydantic models of
:mod:`nddr.config` reject unknown keys, wrong types and out-of-range values).
"""

from __future__ import annotations

import contextlib
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
from torch import nn
from torch.utils.data import Dataset

from nddr.config import Config
from nddr.data.base import MultiTaskDataset
from nddr.engine.checkpoint import list_checkpoints
from nddr.engine.sampling import AugmentedDataset
from nddr.errors import NddrError

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
    with _rng_preserved():
        check_split(config, "train", train_set, train_set.dataset)
        check_split(config, "test", test_set, test_set)


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
