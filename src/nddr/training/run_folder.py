"""The run folder: the one owner of its layout, one writer at a time, every config it has seen.

Every name in a run folder is defined here and nowhere else::

    <run>/
        config.yaml             CONFIG_FILE: the config in force
        config_history.jsonl    CONFIG_HISTORY_FILE: one line per start or resume (the step, the
                                time, the keys changed and the whole config)
        log.jsonl               LOG_FILE
        tensorboard/            TENSORBOARD_DIR
        results.json            RESULTS_FILE: the test metrics, once the run finished
        .lock                   LOCK_FILE
        checkpoints/            CHECKPOINTS_DIR
            step_00001000/      checkpoint_dir(run, 1000): CHECKPOINT_PREFIX + 8 digits
                model.safetensors   MODEL_FILE: weights, network config, tasks, experiment config
                trainer.pt          TRAINER_FILE: optimizer, scheduler, step, RNG states
                manifest.json       MANIFEST_FILE: size and SHA-256 of the two above
            step_00002000.partial/  PARTIAL_SUFFIX: a save under way (or one that never finished)

While a run (or its resume) writes to the folder, it is locked (``.lock``, an advisory
``flock`` that the operating system releases when the process ends, however it ends). What the
checkpoints hold, and how they are verified, is :mod:`nddr.training.checkpoint`'s; how to load a
run back is :mod:`nddr.training.load`'s.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nddr.errors import NddrError
from nddr.io import PathLike, atomic_write
from nddr.training.config import Config, load_config

CONFIG_FILE = "config.yaml"
CONFIG_HISTORY_FILE = "config_history.jsonl"
LOG_FILE = "log.jsonl"
TENSORBOARD_DIR = "tensorboard"
RESULTS_FILE = "results.json"
CHECKPOINTS_DIR = "checkpoints"
LOCK_FILE = ".lock"
CHECKPOINT_PREFIX = "step_"
PARTIAL_SUFFIX = ".partial"
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.pt"
MANIFEST_FILE = "manifest.json"

EARLIER_RUN_FILES = (
    CONFIG_FILE,
    CONFIG_HISTORY_FILE,
    LOG_FILE,
    TENSORBOARD_DIR,
    RESULTS_FILE,
    CHECKPOINTS_DIR,
)
"""What a run leaves in its folder: removed when a run starts afresh in a folder without a
checkpoint, so its log and TensorBoard never mix with an earlier attempt's."""

RESUMABLE_KEYS = (
    "optim.steps",
    "data.workers",
    "data.eval_batch_size",
    "model.execution",
    "run.device",
    "run.compile",
    "run.channels_last",
    "run.keep_freed_memory",
    "run.log_every",
    "run.eval_every",
    "run.checkpoint_every",
    "run.keep_checkpoints",
    "run.progress",
    "run.inspect_every",
)
"""Config keys a resume may change: how the run is executed, logged, evaluated and saved, and
how long it trains. Every other key changes what is trained, so a resume refuses it."""


def checkpoints_dir(run_dir: PathLike) -> Path:
    """The folder of a run's checkpoints."""
    return Path(run_dir) / CHECKPOINTS_DIR


def checkpoint_dir(run_dir: PathLike, step: int) -> Path:
    """The checkpoint folder of ``step`` in a run folder (it may not exist)."""
    return checkpoints_dir(run_dir) / f"{CHECKPOINT_PREFIX}{step:08d}"


class RunLock:
    """An exclusive advisory lock on a run folder, held by one process at a time.

    The lock file records the holder's pid, so the error for a second writer can name it.
    """

    def __init__(self, run_dir: PathLike) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`NddrError` naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise NddrError(
                f"run folder {str(self.path.parent)!r} is in use by another training (pid "
                f"{holder}): wait for it to end, or give this run another name= or run.out="
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (idempotent); the lock file stays, empty."""
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)
        self._fd = None


def remove_earlier_run(run_dir: PathLike) -> list[str]:
    """Remove what an earlier run without a checkpoint left in ``run_dir``; the names removed."""
    removed = []
    for name in EARLIER_RUN_FILES:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


def saved_config(run_dir: PathLike) -> Config:
    """The config in force in a run folder (its ``config.yaml``)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise NddrError(
            f"run folder {str(run_dir)!r} has no {CONFIG_FILE}: pass the folder of a run nddr train made"
        )
    return load_config(path)


def config_changes(before: Config, after: Config) -> dict[str, tuple[Any, Any]]:
    """The dotted keys whose values differ between two configs: key -> (before, after)."""
    old, new = _flatten(before.to_dict()), _flatten(after.to_dict())
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


def check_resume_changes(changes: Mapping[str, tuple[Any, Any]], step: int) -> None:
    """Refuse a resume whose config changes what is trained, naming each such key.

    ``name`` and ``run.out`` choose the folder of a new run; a resume writes to the folder it
    is given, so changing them is refused too. ``optim.steps`` may grow or shrink down to the
    step resumed (the poly schedule then decays over the new budget from that step on).
    """
    refused = [key for key in changes if key not in RESUMABLE_KEYS]
    if refused:
        shown = ", ".join(f"{key} ({changes[key][0]!r} -> {changes[key][1]!r})" for key in refused)
        raise NddrError(
            f"--resume: {shown} would change what the run trains: start a new run (another name=) "
            f"for that; a resume may change only {', '.join(RESUMABLE_KEYS)}"
        )
    if "optim.steps" in changes and changes["optim.steps"][1] < step:
        raise NddrError(
            f"--resume: optim.steps={changes['optim.steps'][1]} is below the step the run resumes "
            f"from ({step}): give at least {step}"
        )


def record_config(
    run_dir: PathLike, config: Config, step: int, changes: Mapping[str, tuple[Any, Any]]
) -> None:
    """Write ``config.yaml`` and append the start (or resume) at ``step`` to the history."""
    run_dir = Path(run_dir)
    with atomic_write(run_dir / CONFIG_FILE) as path:
        Path(path).write_text(config.to_yaml())
    entry = {
        "step": step,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "changed": {key: list(values) for key, values in changes.items()},
        "config": config.to_dict(),
    }
    with open(run_dir / CONFIG_HISTORY_FILE, "a", encoding="utf-8") as history:
        history.write(json.dumps(entry) + "\n")
        history.flush()
        os.fsync(history.fileno())


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
