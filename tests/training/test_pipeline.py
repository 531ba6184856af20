"""The paper's pipeline (``nddr train --from-single-task``): the whole plan is checked before
the first single-task network trains."""

import json
import subprocess
import sys

from nddr.training.config import build_config
from nddr.training.pipeline import check_plan, single_task_configs
from tests.helpers import TINY


def test_a_fused_variant_that_cannot_start_from_single_tasks_fails_before_any_training(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    command = [sys.executable, "-m", "nddr", "train", str(config), "--from-single-task"]
    command += [f"run.out={tmp_path}", "model.variant=multi"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "--from-single-task: model.variant='multi' cannot start" in lines[0]
    assert not list(tmp_path.glob("tiny-run-single-*")), "a single-task network was trained"


def test_the_plan_of_every_fused_variant_checks(tmp_path):
    for variant in ("nddr", "cross_stitch", "sluice", "single"):
        for shortcut in ("false", "true"):
            config = build_config(
                TINY,
                [f"run.out={tmp_path}", f"model.variant={variant}", f"model.shortcut={shortcut}"],
            )
            check_plan(config, single_task_configs(config))


def test_single_task_configs_keep_their_own_task_options_and_weights(tmp_path):
    config = build_config(
        TINY, [f"run.out={tmp_path}", "optim.task_options={normals: {space: encoded}}"]
    )
    singles = single_task_configs(config)
    assert singles["normals"].optim.task_options == {"normals": {"space": "encoded"}}
    assert singles["normals"].optim.loss_weights == {"normals": 20.0}
    assert singles["segmentation"].optim.task_options == {}
    check_plan(config, singles)


def test_the_pipeline_reuses_a_finished_run_only_with_the_same_settings(tmp_path):
    import pytest

    from nddr.errors import NddrError
    from nddr.training.pipeline import run_pipeline

    trained = []

    def fake_train(config, resume=False):
        trained.append(config.name)
        config.run_dir.mkdir(parents=True, exist_ok=True)
        (config.run_dir / "config.yaml").write_text(config.to_yaml())
        checkpoint = str(config.run_dir / "model.safetensors")
        summary = {
            "results": {t: {"accuracy": 1.0} for t in config.data.tasks},
            "checkpoint": checkpoint,
        }
        (config.run_dir / "results.json").write_text(json.dumps({**summary, "step": 1}))
        return {**summary, "step": 1, "run_dir": str(config.run_dir), "is_main": True}

    config = build_config(TINY, [f"run.out={tmp_path}"])
    first = run_pipeline(config, train=fake_train)
    assert len(trained) == 3 and trained[-1] == config.name
    assert set(first["single_task"]) == set(config.data.tasks)
    singles = [first["single_task"][task]["checkpoint"] for task in config.data.tasks]
    assert json.loads((config.run_dir / "reproduce.json").read_text())["config"]["model"][
        "init_from"
    ] == dict(zip(config.data.tasks, singles))
    second = run_pipeline(config, train=fake_train)
    assert len(trained) == 3, "a finished run with the same settings is reused"
    assert second["checkpoint"] == first["checkpoint"]
    changed = build_config(TINY, [f"run.out={tmp_path}", "optim.lr=0.5"])
    with pytest.raises(NddrError, match=r"optim\.lr=.*\(planned: 0\.5\).*name= or run\.out="):
        run_pipeline(changed, train=fake_train)
    assert len(trained) == 3
