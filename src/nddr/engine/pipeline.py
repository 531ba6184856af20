"""The paper's pipeline (§4.3, Table 3 "Sing."): single-task networks first, then the fused
network initialised from them, then fine-tuned."""

from __future__ import annotations

import json
from typing import Any

import torch

from nddr.config import Config, build_config
from nddr.data import build_dataset
from nddr.engine.build import training_network
from nddr.engine.run_folder import RESULTS_FILE
from nddr.engine.trainer import train
from nddr.errors import NddrError
from nddr.network import init_from_single_task
from nddr.tasks import build_tasks


def single_task_configs(config: Config) -> dict[str, Config]:
    """One ``single`` config per task of ``config`` (same data, backbone and recipe)."""
    configs = {}
    for task in _task_names(config):
        data = config.to_dict()
        data["name"] = f"{config.name}-single-{task}"
        data["data"]["tasks"] = [task]
        data["model"].update(variant="single", shortcut=False, fusion_options={}, init_from=None)
        for key in ("loss_weights", "task_options"):
            data["optim"][key] = {
                name: value for name, value in getattr(config.optim, key).items() if name == task
            }
        configs[task] = build_config(data)
    return configs


def fused_config(config: Config, init_from: dict[str, str]) -> Config:
    """``config`` with ``model.init_from`` pointing at the single-task model files."""
    fused = config.to_dict()
    fused["model"]["init_from"] = init_from
    return build_config(fused)


def check_plan(config: Config, singles: dict[str, Config]) -> None:
    """Fail before the first step if the fused network cannot start from the single-task ones.

    Builds every network of the plan on the meta device (no memory, no weights) and maps the
    single-task state dicts into the fused network as :func:`init_from_single_task` will.
    """
    targets = build_dataset(
        config.data.name, config.data.root, "test", tasks=config.data.tasks, **config.data.options
    ).targets
    tasks = build_tasks(targets, config.optim.loss_weights, config.optim.task_options)
    with torch.device("meta"):
        fused = training_network(config, tasks, initialise=False)
        states = {
            task.name: training_network(singles[task.name], [task], initialise=False).state_dict()
            for task in tasks
        }
    try:
        init_from_single_task(fused, states)
    except NddrError as error:
        raise NddrError(
            f"--from-single-task: model.variant={config.model.variant!r} cannot start from the "
            f"single-task networks ({error})"
        ) from None


def run_pipeline(config: Config) -> dict[str, Any]:
    """Train each task's single-task network (skipping finished ones), then ``config`` with
    ``model.init_from`` pointing at them. Returns the fused run's summary plus the single ones.

    The whole plan is checked first (:func:`check_plan`), so a fused network that cannot start
    from the single-task ones fails before they are trained.
    """
    configs = single_task_configs(config)
    check_plan(config, configs)
    singles = {}
    for task, single in configs.items():
        finished = single.run_dir / RESULTS_FILE
        if finished.is_file():
            singles[task] = json.loads(finished.read_text())
        else:
            singles[task] = train(single)
    init_from = {task: summary["checkpoint"] for task, summary in singles.items()}
    summary = train(fused_config(config, init_from))
    return {**summary, "single_task": singles}


def _task_names(config: Config) -> list[str]:
    if config.data.tasks:
        return list(config.data.tasks)
    data = config.data
    return list(build_dataset(data.name, data.root, "test", **data.options).targets)
