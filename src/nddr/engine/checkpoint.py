"""Training checkpoints: written atomically, loaded without executing pickled code.

A checkpoint is a folder ``<run>/checkpoints/step_<8 digits>/`` holding

* ``model.safetensors``: the weights, with the network's build config, the tasks and the whole
  experiment config as metadata (what ``nddr eval / predict / inspect`` need);
* ``trainer.pt``: optimizer, scheduler, step, RNG states (tensors and plain Python values only,
  read back with ``torch.load(weights_only=True)``).

The folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint that looks complete.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from nddr.data.base import TargetSpec
from nddr.errors import NddrError
from nddr.io import PathLike, atomic_write, read_metadata, save_state_dict
from nddr.network import MultiTaskNetwork, load_network
from nddr.network.transfer import CONFIG_KEY
from nddr.tasks import Task, build_task

MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.pt"
TASKS_KEY = "nddr_tasks"
EXPERIMENT_KEY = "nddr_config"


def checkpoint_dir(run_dir: PathLike, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:08d}"


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
    temporary = final.with_name(final.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    save_state_dict(
        network.state_dict(), temporary / MODEL_FILE, model_metadata(network, tasks, config)
    )
    with atomic_write(temporary / TRAINER_FILE) as path:
        torch.save(trainer_state, path)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.glob("step_*")
        if path.is_dir() and not path.name.endswith(".partial") and (path / MODEL_FILE).is_file()
    )


def find_model_file(path: PathLike) -> Path:
    """The model file of ``path``: a ``.safetensors`` file, a checkpoint folder, or a run folder
    (its newest checkpoint)."""
    path = Path(path)
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
        f"{str(path)!r} holds no checkpoint (no checkpoints/step_*/{MODEL_FILE}): has the run saved one yet?"
    )


def load_trainer_state(checkpoint: PathLike) -> dict[str, Any]:
    path = Path(checkpoint) / TRAINER_FILE
    if not path.is_file():
        raise NddrError(
            f"checkpoint {str(checkpoint)!r} has no {TRAINER_FILE}: it cannot resume a run"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise NddrError(
            f"trainer state {str(path)!r} is unreadable ({type(error).__name__}): the checkpoint is corrupt; resume from an earlier one"
        ) from None


def load_model(path: PathLike) -> tuple[MultiTaskNetwork, list[Task], dict[str, Any]]:
    """Rebuild the trained network, its tasks and its experiment config from a checkpoint."""
    model_file = find_model_file(path)
    metadata = read_metadata(model_file)
    if not isinstance(metadata.get(CONFIG_KEY), dict) or not isinstance(
        metadata.get(TASKS_KEY), list
    ):
        raise NddrError(
            f"{str(model_file)!r} is not a training checkpoint of nddr (no network config and tasks in its metadata)"
        )
    network = load_network(model_file)
    tasks = [
        build_task(
            entry["name"],
            TargetSpec(
                entry["kind"],
                entry["num_classes"],
                tuple(entry["class_names"]) if entry["class_names"] else None,
            ),
            entry["weight"],
        )
        for entry in metadata[TASKS_KEY]
    ]
    return network, tasks, metadata.get(EXPERIMENT_KEY) or {}
