"""Loading what nddr saved: one function per question, for every path ``nddr train`` leaves.

- :func:`find_model_file` (path): the model file behind a run folder (its newest checkpoint), a
  checkpoint folder or a file; a checkpoint's is verified against its manifest.
- :func:`load_network_file` (file): the network of one file (:func:`nddr.save_network`'s, or a
  checkpoint's ``model.safetensors``).
- :func:`load_network` (path): the network of a file, a checkpoint folder or a run folder.
- :func:`load_weights` (network, source): weights into a network the caller built.
- :func:`load_run` (path): the network, tasks and experiment :class:`~nddr.training.config.Config` of a
  training checkpoint: what ``nddr eval`` and ``nddr predict`` run.

``load_network_file`` and ``load_weights`` belong to the network layer
(:mod:`nddr.models.transfer`), which knows files only; folders are the run folder's
(:mod:`nddr.training.run_folder`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nddr.data.base import TargetSpec
from nddr.errors import NddrError
from nddr.io import PathLike, read_metadata
from nddr.models import MultiTaskNetwork, load_network_file, load_weights
from nddr.models.transfer import CONFIG_KEY
from nddr.tasks import Task, build_task
from nddr.training.checkpoint import CHECKPOINTS_PATTERN, EXPERIMENT_KEY, TASKS_KEY, find_model_file
from nddr.training.config import Config, build_config

__all__ = [
    "find_model_file",
    "load_model",
    "load_network",
    "load_network_file",
    "load_run",
    "load_weights",
]


def load_network(path: PathLike) -> MultiTaskNetwork:
    """Rebuild the network of a file written by :func:`nddr.save_network`, a checkpoint folder
    or a run folder of ``nddr train`` (its newest checkpoint, verified against its manifest)."""
    path = Path(path)
    return load_network_file(find_model_file(path) if path.is_dir() else path)


def load_run(path: PathLike) -> tuple[MultiTaskNetwork, list[Task], Config]:
    """The trained network, its tasks and its experiment config, from a run folder (its newest
    checkpoint), a checkpoint folder or a checkpoint's model file."""
    network, tasks, experiment = _read_checkpoint(path)
    return network, tasks, build_config(experiment)


def load_model(path: PathLike) -> tuple[MultiTaskNetwork, list[Task], dict[str, Any]]:
    """:func:`load_run` with the experiment config as the checkpoint stores it (a plain dict):
    the earlier name, kept for callers of ``nddr.training.load_model``."""
    return _read_checkpoint(path)


def _read_checkpoint(path: PathLike) -> tuple[MultiTaskNetwork, list[Task], dict[str, Any]]:
    """The network, tasks and stored experiment config of a training checkpoint."""
    model_file = find_model_file(path)
    metadata = read_metadata(model_file)
    if CONFIG_KEY not in metadata:
        raise NddrError(
            f"{str(model_file)!r} is not a training checkpoint of nddr (no network config and tasks in its metadata)"
        )
    if TASKS_KEY not in metadata or EXPERIMENT_KEY not in metadata:
        raise NddrError(
            f"{str(model_file)!r} is a network file (nddr.save_network), not a training checkpoint: it lacks the "
            "tasks and the experiment config (dataset) this needs; pass the run folder of nddr train or one of its "
            f"{CHECKPOINTS_PATTERN} folders"
        )
    network = load_network_file(model_file)
    tasks = _stored_tasks(model_file, metadata[TASKS_KEY], network.task_names)
    experiment = metadata[EXPERIMENT_KEY]
    if not isinstance(experiment, dict):
        raise NddrError(
            f"{str(model_file)!r}: metadata {EXPERIMENT_KEY!r} is a {type(experiment).__name__}, not a mapping; "
            "it was edited: use the checkpoint as nddr train saved it"
        )
    return network, tasks, experiment


_TASK_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "kind": (str,),
    "num_classes": (int, type(None)),
    "class_names": (list, type(None)),
    "weight": (int, float),
}
_OPTIONAL_TASK_ENTRY_TYPES: dict[str, tuple[type, ...]] = {"options": (dict,)}
"""Keys that checkpoints saved before they existed lack (``options``: the task's defaults)."""


def _stored_tasks(model_file: Path, entries: object, names: Iterable[str]) -> list[Task]:
    """The tasks saved in a checkpoint's metadata, each entry checked so that an edited file
    fails in one line naming the key."""
    where = f"{str(model_file)!r}: metadata {TASKS_KEY!r}"
    fix = "it was edited: use the checkpoint as nddr train saved it"
    if not isinstance(entries, list):
        raise NddrError(f"{where} is a {type(entries).__name__}, not a list; {fix}")
    allowed = _TASK_ENTRY_TYPES.keys() | _OPTIONAL_TASK_ENTRY_TYPES.keys()
    tasks = []
    for entry in entries:
        if not isinstance(entry, dict) or not _TASK_ENTRY_TYPES.keys() <= entry.keys() <= allowed:
            raise NddrError(
                f"{where}: entry {entry!r} does not have exactly the keys {', '.join(_TASK_ENTRY_TYPES)} "
                f"(and optionally {', '.join(_OPTIONAL_TASK_ENTRY_TYPES)}); {fix}"
            )
        for key, types in (_TASK_ENTRY_TYPES | _OPTIONAL_TASK_ENTRY_TYPES).items():
            if key in entry and (not isinstance(entry[key], types) or isinstance(entry[key], bool)):
                raise NddrError(f"{where}: {key} = {entry[key]!r} has the wrong type; {fix}")
        class_names = tuple(entry["class_names"]) if entry["class_names"] else None
        try:
            task = build_task(
                entry["name"],
                TargetSpec(entry["kind"], entry["num_classes"], class_names),
                entry["weight"],
                entry.get("options"),
            )
        except NddrError as error:
            raise NddrError(f"{where}: {error}; {fix}") from None
        tasks.append(task)
    if [task.name for task in tasks] != list(names):
        raise NddrError(
            f"{where} names tasks {[task.name for task in tasks]} but the network has {list(names)}; {fix}"
        )
    return tasks
