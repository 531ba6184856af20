"""Network weights on disk: save, load, and start a fused network from single-task ones (§4.3)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from nddr.errors import NddrError
from nddr.io import (
    PathLike,
    describe_mismatch,
    is_safetensors,
    load_state_dict,
    read_metadata,
    save_state_dict,
)
from nddr.models.builder import build_network
from nddr.models.fusion.registry import SHARED_TRUNK, VARIANTS
from nddr.models.heads import HeadSpec
from nddr.models.network import MultiTaskNetwork

CONFIG_KEY = "nddr_network"


def save_network(network: MultiTaskNetwork, path: PathLike) -> Path:
    """Write the network's weights with its build config as metadata.

    The file is safetensors whatever the suffix of ``path`` (:func:`load_network_file` tells
    the format by content), written atomically, with a checksum of the tensors.
    """
    metadata = {CONFIG_KEY: network.config} if network.config is not None else None
    return save_state_dict(network.state_dict(), path, metadata)


def load_network_file(path: PathLike) -> MultiTaskNetwork:
    """Rebuild a network saved by :func:`save_network` (whatever the file's suffix), or a
    checkpoint's model file, and load its weights.

    A file only: :func:`nddr.load_network` also takes a checkpoint or run folder.
    """
    path = _network_file(Path(path))
    config = stored_config(path)
    if config is None:
        raise NddrError(
            f"network file {path} carries no nddr build config (a custom backbone, or not written by "
            "nddr): build the network yourself and call nddr.load_weights(network, path)"
        )
    try:
        network = build_network(**config)
    except (NddrError, TypeError, ValueError) as error:
        raise NddrError(
            f"network file {path}: its {CONFIG_KEY!r} metadata does not build a network ({error}); "
            "it was edited: save the network again with nddr.save_network"
        ) from None
    load_weights(network, path)
    return network


def _network_file(path: Path) -> Path:
    """``path``, checked to be a safetensors file."""
    if path.is_dir():
        raise NddrError(
            f"network file {path} is a folder: pass the file, or load a checkpoint or run folder "
            "of nddr train with nddr.load_network"
        )
    if not path.is_file():
        raise NddrError(
            f"network file {path} not found: pass a file written by nddr.save_network, or a "
            "checkpoint or run folder of nddr train"
        )
    if not is_safetensors(path):
        raise NddrError(
            f"network file {path} is not a readable safetensors file (a torch file, not one written "
            "by nddr.save_network): build the network yourself and call nddr.load_weights(network, path)"
        )
    return path


_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "backbone": str,
    "tasks": list,
    "variant": str,
    "shortcut": bool,
    "backbone_options": dict,
    "fusion_options": dict,
    "head_options": dict,
    "bn_momentum": (float, type(None)),
    "bn_eps": (float, type(None)),
}
_HEAD_FIELDS = {field.name for field in dataclasses.fields(HeadSpec)}


def _type_name(key: str) -> str:
    kinds = _CONFIG_TYPES[key] if isinstance(_CONFIG_TYPES[key], tuple) else (_CONFIG_TYPES[key],)
    return " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)


def stored_config(path: PathLike) -> dict | None:
    """The build config that :func:`save_network` stored in ``path`` (``None`` if there is none),
    checked key by key so that an edited file fails in one line naming the key."""
    config = read_metadata(path).get(CONFIG_KEY)
    if config is None:
        return None
    where = f"network file {path}: metadata {CONFIG_KEY!r}"
    fix = "it was edited: save the network again with nddr.save_network"
    if not isinstance(config, dict):
        raise NddrError(f"{where} is a {type(config).__name__}, not a mapping; {fix}")
    for key, value in config.items():
        if key not in _CONFIG_TYPES:
            raise NddrError(
                f"{where} has an unknown key {key!r} (known: {', '.join(_CONFIG_TYPES)}); {fix}"
            )
        if not isinstance(value, _CONFIG_TYPES[key]):
            raise NddrError(f"{where}: {key} = {value!r} is not a {_type_name(key)}; {fix}")
    for key in ("backbone", "tasks"):
        if key not in config:
            raise NddrError(f"{where} has no {key!r}; {fix}")
    for task in config["tasks"]:
        if (
            not isinstance(task, dict)
            or not {"name", "out_channels"} <= task.keys() <= _HEAD_FIELDS
        ):
            raise NddrError(
                f"{where}: tasks entry {task!r} is not a head spec (keys {', '.join(sorted(_HEAD_FIELDS))}); {fix}"
            )
    return config


def load_weights(network: MultiTaskNetwork, source: PathLike | Mapping[str, Tensor]) -> None:
    """Load a full state dict into ``network``, with an error naming any key that does not fit."""
    state = load_state_dict(source) if not isinstance(source, Mapping) else source
    target = network.state_dict()
    _check_fit(
        state,
        target,
        required=set(target),
        origin=str(source if not isinstance(source, Mapping) else "state dict"),
    )
    network.load_state_dict(state)


def init_from_single_task(
    network: MultiTaskNetwork, checkpoints: Mapping[str, PathLike | Mapping[str, Tensor]]
) -> None:
    """Start each task's column and head from that task's single-task network (paper §4.3).

    ``checkpoints`` maps a task name to a file of a ``single`` network of the same backbone that
    has that task (written by :func:`save_network`; a plain state dict, in a file or as it is,
    works when it has one column). Its column goes to the task's column here, its head to the
    task's head, and its head input (a shortcut) too when both have one. Fusion layers keep their initialisation, so with NDDR
    init (1, 0) the fused network starts computing the single-task networks (Table 3, "Sing.").
    """
    if len(network.columns) != len(network.task_names):
        raise NddrError(
            "the multi-task baseline shares one column between tasks; single-task checkpoints "
            "initialise variants with one column per task "
            f"({', '.join(name for name in VARIANTS if name != SHARED_TRUNK)})"
        )
    target = network.state_dict()
    for task, path in checkpoints.items():
        if task not in network.task_names:
            raise NddrError(
                f"no task {task!r} in this network (tasks: {', '.join(network.task_names)})"
            )
        state = path if isinstance(path, Mapping) else load_state_dict(path)
        origin = f"the state dict of {task!r}" if isinstance(path, Mapping) else str(path)
        source_tasks = _tasks_of(state, None if isinstance(path, Mapping) else path)
        if task not in source_tasks:
            raise NddrError(
                f"{origin} has no head for task {task!r} (it has {', '.join(source_tasks) or 'none'}): "
                "pass that task's single-task checkpoint"
            )
        source_column = _column_of(state, source_tasks, task, origin)
        column = network.column_index(task)
        mapped: dict[str, Tensor] = {}
        for key, value in state.items():
            match = re.match(r"(columns|head_inputs)\.(\d+)\.(.+)", key)
            if match and int(match.group(2)) == source_column:
                mapped[f"{match.group(1)}.{column}.{match.group(3)}"] = value
            elif key.startswith(f"heads.{task}."):
                mapped[key] = value
        required = {
            key for key in target if key.startswith((f"columns.{column}.", f"heads.{task}."))
        }
        _check_fit(mapped, target, required, origin=origin)
        with torch.no_grad():
            for key, value in mapped.items():
                target[key].copy_(value)


def _tasks_of(state: Mapping[str, Tensor], path: PathLike | None) -> list[str]:
    if path is not None and is_safetensors(path):
        config = stored_config(path)
        if config is not None:
            return [task["name"] for task in config["tasks"]]
    return list(dict.fromkeys(key.split(".")[1] for key in state if key.startswith("heads.")))


def _column_of(state: Mapping[str, Tensor], tasks: list[str], task: str, path: PathLike) -> int:
    columns = {
        int(match.group(1)) for key in state if (match := re.match(r"columns\.(\d+)\.", key))
    }
    if len(columns) == 1:
        return columns.pop()
    if len(columns) == len(tasks):
        return tasks.index(task)
    raise NddrError(
        f"{path} has {len(columns)} columns for {len(tasks)} tasks: pass a single-task network "
        "(variant 'single') of the task"
    )


def _check_fit(
    state: Mapping[str, Tensor], target: Mapping[str, Tensor], required: set[str], origin: str
) -> None:
    mismatch = describe_mismatch(state, target, required)
    if mismatch and _earlier_layout(state, target):
        raise NddrError(
            f"{origin} was written by an earlier nddr whose LargeFOV heads had no batch norm "
            "(fc6 / fc7 are now conv + BN + ReLU) or whose head inputs were keyed by task: "
            "train it again with this version"
        )
    if mismatch:
        raise NddrError(
            f"{origin} does not fit this network ({mismatch}): use weights of the same "
            "backbone, tasks and head sizes"
        )


def _earlier_layout(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> bool:
    """Whether ``state`` has the key layout of nddr before the LargeFOV heads gained batch norm
    and the head inputs became one per column."""
    head_norms = re.compile(r"heads\.[^.]+\.bn[67]\.")
    has_large_fov = any(re.match(r"heads\.[^.]+\.fc6\.", key) for key in state)
    lacks_head_norms = (
        has_large_fov
        and any(head_norms.match(key) for key in target)
        and not any(head_norms.match(key) for key in state)
    )
    inputs_by_task = any(re.match(r"head_inputs\.[^\d.][^.]*\.", key) for key in state)
    return lacks_head_norms or inputs_by_task
