"""The paper's pipeline (§4.3, Table 3 "Sing."): single-task networks first, then the fused
network initialised from them, then fine-tuned."""

from __future__ import annotations

from typing import Any

from nddr.config import Config, build_config
from nddr.data import build_dataset
from nddr.engine.trainer import train


def single_task_configs(config: Config) -> dict[str, Config]:
    """One ``single`` config per task of ``config`` (same data, backbone and recipe)."""
    tasks = config.data.tasks or list(
        build_dataset(config.data.name, config.data.root, "test", **config.data.options).targets
    )
    configs = {}
    for task in tasks:
        data = config.to_dict()
        data["name"] = f"{config.name}-single-{task}"
        data["data"]["tasks"] = [task]
        data["model"].update(variant="single", shortcut=False, fusion_options={}, init_from=None)
        data["optim"]["loss_weights"] = {
            key: value for key, value in config.optim.loss_weights.items() if key == task
        }
        configs[task] = build_config(data)
    return configs


def run_pipeline(config: Config) -> dict[str, Any]:
    """Train each task's single-task network (skipping finished ones), then ``config`` with
    ``model.init_from`` pointing at them. Returns the fused run's summary plus the single ones."""
    singles = {}
    for task, single in single_task_configs(config).items():
        finished = single.run_dir / "results.json"
        if finished.is_file():
            import json

            singles[task] = json.loads(finished.read_text())
        else:
            singles[task] = train(single)
    fused = config.to_dict()
    fused["model"]["init_from"] = {task: summary["checkpoint"] for task, summary in singles.items()}
    summary = train(build_config(fused))
    return {**summary, "single_task": singles}
