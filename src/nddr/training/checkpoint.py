"""Training checkpoints: written atomically, loaded without executing pickled code.

A checkpoint is a folder ``<run>/checkpoints/step_<8 digits>/`` (names:
:mod:`nddr.training.run_folder`) holding

* ``model.safetensors``: the weights, with the network's build config, the tasks and the whole
  experiment config as metadata (what ``nddr eval / predict / inspect`` need);
* ``trainer.pt``: optimizer, scheduler, step, RNG states (tensors and plain Python values only,
  read back with ``torch.load(weights_only=True)``);
* ``manifest.json``: the size and SHA-256 of each of those files, so that a truncated or corrupt
  checkpoint is detected before it is loaded (:func:`verify_checkpoint`).

The folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint that looks complete. A resume takes the newest checkpoint that verifies
(:func:`latest_resumable`).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from nddr.errors import NddrError
from nddr.io import (
    PathLike,
    atomic_write,
    file_sha256,
    fsync_directory,
    save_state_dict,
)
from nddr.models import MultiTaskNetwork
from nddr.models.transfer import CONFIG_KEY
from nddr.tasks import Task
from nddr.training.run_folder import (
    CHECKPOINT_PREFIX,
    CHECKPOINTS_DIR,
    MANIFEST_FILE,
    MODEL_FILE,
    PARTIAL_SUFFIX,
    TRAINER_FILE,
    checkpoint_dir,
    checkpoints_dir,
)

MANIFEST_VERSION = 1
TASKS_KEY = "nddr_tasks"
EXPERIMENT_KEY = "nddr_config"
CHECKPOINTS_PATTERN = f"{CHECKPOINTS_DIR}/{CHECKPOINT_PREFIX}*"
"""The checkpoint folders of a run, relative to it (as error messages name them)."""


def rng_state() -> dict[str, Any]:
    """Every random state the training loop draws from (Python, torch CPU and CUDA)."""
    state: dict[str, Any] = {"python": _plain(random.getstate()), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuple(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    return [_plain(item) for item in value] if isinstance(value, tuple) else value


def _tuple(value: Any) -> Any:
    return tuple(_tuple(item) for item in value) if isinstance(value, list) else value


def model_metadata(network: MultiTaskNetwork, tasks: list[Task], config: dict) -> dict[str, Any]:
    return {
        CONFIG_KEY: network.config,
        TASKS_KEY: [
            {
                "name": task.name,
                "kind": task.kind,
                "num_classes": task.num_classes,
                "class_names": list(task.class_names) if task.class_names else None,
                "weight": task.weight,
                "options": task.options,
            }
            for task in tasks
        ],
        EXPERIMENT_KEY: config,
    }


def save_checkpoint(
    run_dir: PathLike,
    step: int,
    network: MultiTaskNetwork,
    tasks: list[Task],
    config: dict,
    trainer_state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write the checkpoint of ``step`` atomically and keep only the newest ``keep``."""
    final = checkpoint_dir(run_dir, step)
    temporary = final.with_name(final.name + PARTIAL_SUFFIX)
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_state_dict(
        network.state_dict(), temporary / MODEL_FILE, model_metadata(network, tasks, config)
    )
    with atomic_write(temporary / TRAINER_FILE) as path:
        torch.save(trainer_state, path)
    _write_manifest(temporary, (MODEL_FILE, TRAINER_FILE))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    fsync_directory(final.parent)
    _prune(run_dir, final, keep)
    return final


def _prune(run_dir: PathLike, newest: Path, keep: int) -> None:
    """Remove the checkpoints older than ``newest`` beyond the ``keep`` newest.

    Only once ``newest`` is in place, and never a later step: one left by a run resumed from an
    earlier checkpoint (it failed verification) is replaced when the run reaches its step again.
    """
    current = [path for path in list_checkpoints(run_dir) if path.name <= newest.name]
    for old in current[: max(len(current) - keep, 0)]:
        shutil.rmtree(old, ignore_errors=True)


def _write_manifest(folder: Path, names: Iterable[str]) -> None:
    """Write ``manifest.json`` atomically: size and SHA-256 of each file ``names`` of ``folder``."""
    files = {
        name: {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
        for name in names
    }
    manifest = {"version": MANIFEST_VERSION, "files": files}
    with atomic_write(folder / MANIFEST_FILE) as path:
        Path(path).write_text(json.dumps(manifest, indent=2) + "\n")


class _Damaged(Exception):
    """Why a checkpoint fails verification: a phrase that completes "checkpoint <folder> ..."."""


def _read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """The manifest's entries by file name; :class:`_Damaged` if missing or malformed."""
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise _Damaged(
            f"has no {MANIFEST_FILE} (saved by an older nddr, or not by nddr), so it cannot be verified"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise _Damaged(f"has an unreadable {MANIFEST_FILE} ({type(error).__name__})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(files, dict)
        or not {MODEL_FILE, TRAINER_FILE} <= files.keys()
        or not all(_valid_entry(name, entry) for name, entry in files.items())
    ):
        raise _Damaged(
            f"has an unreadable {MANIFEST_FILE} (no size and SHA-256 of {MODEL_FILE} and {TRAINER_FILE})"
        )
    return files


def _valid_entry(name: str, entry: object) -> bool:
    """A plain file name of the folder itself, with a byte count and a SHA-256 hex digest."""
    return (
        name not in ("", "..")
        and Path(name).name == name
        and isinstance(entry, dict)
        and type(entry.get("size")) is int
        and entry["size"] >= 0
        and isinstance(entry.get("sha256"), str)
        and re.fullmatch("[0-9a-f]{64}", entry["sha256"]) is not None
    )


def _check_file(folder: Path, name: str, entry: dict[str, Any]) -> None:
    """:class:`_Damaged` unless ``folder / name`` has the size and digest of ``entry``."""
    path = folder / name
    if not path.is_file():
        raise _Damaged(f"is incomplete ({name} is missing)")
    try:
        size = path.stat().st_size
        if size < entry["size"]:
            raise _Damaged(f"is truncated ({name} has {size} of its {entry['size']} bytes)")
        if size != entry["size"]:
            raise _Damaged(f"is corrupt ({name} has {size} bytes, {entry['size']} were written)")
        if file_sha256(path) != entry["sha256"]:
            raise _Damaged(f"is corrupt (checksum mismatch in {name})")
    except OSError as error:
        raise _Damaged(
            f"is unreadable ({name}: {error.strerror or type(error).__name__})"
        ) from None


def _check(folder: Path, names: Iterable[str] | None = None) -> None:
    """Check the files ``names`` of ``folder`` (all in its manifest when None) against it."""
    files = _read_manifest(folder)
    for name in files if names is None else names:
        if name in files:
            _check_file(folder, name, files[name])


def _verify(folder: Path, names: Iterable[str] | None = None) -> None:
    try:
        _check(folder, names)
    except _Damaged as damage:
        raise NddrError(
            f"checkpoint {str(folder)!r} {damage}: use an earlier checkpoint of the run, or start a new run"
        ) from None


def verify_checkpoint(folder: PathLike) -> None:
    """Check every file of a checkpoint folder against its manifest (size, then SHA-256).

    Raises :class:`NddrError` naming the folder and the file when the manifest is missing or
    unreadable, or a file is missing, truncated or corrupt.
    """
    _verify(Path(folder))


def latest_resumable(run_dir: PathLike) -> tuple[Path, list[str]]:
    """The newest checkpoint of ``run_dir`` that verifies, and one warning per newer one that
    does not (each naming the checkpoint, what is wrong and the one resumed instead)."""
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise NddrError(
            f"run folder {str(run_dir)!r} has no checkpoint to resume (no {CHECKPOINTS_PATTERN}/{MODEL_FILE}): has the run saved one yet?"
        )
    damaged: list[str] = []
    for checkpoint in reversed(checkpoints):
        try:
            _check(checkpoint)
        except _Damaged as damage:
            damaged.append(f"checkpoint {str(checkpoint)!r} {damage}")
            continue
        return checkpoint, [f"{line}; falling back to {str(checkpoint)!r}" for line in damaged]
    raise NddrError(
        f"run folder {str(run_dir)!r} has no intact checkpoint left to resume (all {len(checkpoints)} fail verification; "
        f"the newest: {damaged[0]}): start a new run with another name= or run.out="
    )


def remove_unfinished(run_dir: PathLike) -> list[Path]:
    """Remove the ``.partial`` folders of saves that never finished (the process died while
    writing them); the folders removed. Never a complete checkpoint."""
    pattern = f"{CHECKPOINT_PREFIX}*{PARTIAL_SUFFIX}"
    stale = sorted(path for path in checkpoints_dir(run_dir).glob(pattern) if path.is_dir())
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def list_checkpoints(run_dir: PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = checkpoints_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.glob(f"{CHECKPOINT_PREFIX}*")
        if path.is_dir()
        and not path.name.endswith(PARTIAL_SUFFIX)
        and (path / MODEL_FILE).is_file()
    )


def find_model_file(path: PathLike) -> Path:
    """The model file of ``path``: a ``.safetensors`` file, a checkpoint folder, or a run folder
    (its newest checkpoint).

    A checkpoint's ``model.safetensors`` is verified against the checkpoint's manifest when it
    has one; any other file, or a checkpoint saved before manifests, is returned unchecked.
    """
    model_file = _locate_model_file(Path(path))
    if model_file.name == MODEL_FILE and (model_file.parent / MANIFEST_FILE).is_file():
        _verify(model_file.parent, [MODEL_FILE])
    return model_file


def _locate_model_file(path: Path) -> Path:
    if path.is_file():
        return path
    if (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    checkpoints = list_checkpoints(path)
    if checkpoints:
        return checkpoints[-1] / MODEL_FILE
    if not path.exists():
        raise NddrError(
            f"checkpoint {str(path)!r} does not exist: pass a run folder, a checkpoint folder or a model .safetensors"
        )
    raise NddrError(
        f"folder {str(path)!r} holds no checkpoint (no {MODEL_FILE}, no {CHECKPOINTS_PATTERN}/{MODEL_FILE}): "
        "pass a run folder that has saved one, a checkpoint folder or a network file"
    )


def load_trainer_state(checkpoint: PathLike) -> dict[str, Any]:
    """The trainer state of a checkpoint, verified first against its manifest when it has one;
    never executes pickled code."""
    checkpoint = Path(checkpoint)
    path = checkpoint / TRAINER_FILE
    if not path.is_file():
        raise NddrError(
            f"checkpoint {str(checkpoint)!r} has no {TRAINER_FILE}: it cannot resume a run"
        )
    if (checkpoint / MANIFEST_FILE).is_file():
        _verify(checkpoint, [TRAINER_FILE])
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):
            raise _unreadable(path, error) from None
        raise NddrError(
            f"trainer state {str(path)!r} holds pickled objects that would run code when loaded; "
            "refusing it: nddr never writes those, so resume from a checkpoint nddr saved"
        ) from None
    except Exception as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: Exception) -> NddrError:
    return NddrError(
        f"trainer state {str(path)!r} is unreadable ({type(error).__name__}): the checkpoint is corrupt; resume from an earlier one"
    )
