"""The training loop: recipe, exact resume, checkpoints, logs, DDP equivalence under torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nddr.errors import NddrError
from nddr.io import load_state_dict
from nddr.training import checkpoint as checkpoints
from nddr.training import load_model, train
from nddr.training.distributed import setup
from nddr.training.sampling import GlobalBatchSampler
from nddr.training.trainer import Trainer, poly_schedule
from tests.helpers import TINY, tiny_config


def test_poly_schedule_is_the_papers():
    schedule = poly_schedule(100, 0.9)
    assert schedule(0) == 1.0 and schedule(100) == 0.0
    assert schedule(50) == pytest.approx(0.5**0.9)


def test_global_batches_split_across_ranks_and_micro_batches():
    single = list(GlobalBatchSampler(20, 8, seed=1, epoch=0))
    assert len(single) == 2 and all(len(batch) == 8 for batch in single)
    shards = [
        list(GlobalBatchSampler(20, 8, seed=1, epoch=0, rank=rank, world_size=2, accumulate=2))
        for rank in range(2)
    ]
    # Each global batch is 2 micro-batches x 2 ranks x 2 samples: together the single one.
    for batch in range(2):
        parts = [shards[rank][batch * 2 + micro] for micro in range(2) for rank in range(2)]
        assert sorted(index for part in parts for index in part) == sorted(single[batch])
    resumed = list(GlobalBatchSampler(20, 8, seed=1, epoch=0, start=1))
    assert resumed == single[1:]
    assert list(GlobalBatchSampler(20, 8, seed=1, epoch=1)) != single


def test_training_writes_logs_checkpoints_and_results(tmp_path):
    summary = train(tiny_config(tmp_path))
    run_dir = Path(summary["run_dir"])
    assert summary["step"] == 6
    assert set(summary["results"]) == {"segmentation", "normals"}
    assert 0 <= summary["results"]["segmentation"]["miou"] <= 100
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steps = [line["step"] for line in lines if "loss" in line]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert lines[0]["lr"] == pytest.approx(0.01 * (1 - 1 / 6) ** 0.9)
    assert {"segmentation", "normals", "total"} <= set(lines[0]["loss"])
    assert "eval" in lines[-1]
    assert [path.name for path in checkpoints.list_checkpoints(run_dir)] == [
        "step_00000003",
        "step_00000006",
    ]
    assert (run_dir / "config.yaml").is_file() and (run_dir / "tensorboard").is_dir()
    _, tasks, experiment = load_model(run_dir)
    assert [task.name for task in tasks] == ["segmentation", "normals"]
    assert tasks[1].weight == 20.0 and experiment["optim"]["steps"] == 6
    # Starting again in the same folder would overwrite it: refused, the way out named.
    with pytest.raises(NddrError, match="--resume"):
        train(tiny_config(tmp_path))


def test_an_encoded_space_run_keeps_its_normals_space(tmp_path):
    summary = train(
        tiny_config(tmp_path, "optim.steps=2", "optim.task_options={normals: {space: encoded}}")
    )
    _, tasks, _ = load_model(summary["run_dir"])
    assert tasks[1].space == "encoded"
    results = summary["results"]["normals"]
    assert results["encoded_mean"] < results["mean"]  # encoded angles are the smaller ones


class Interrupted(Exception):
    pass


def test_resume_after_a_kill_gives_the_same_weights(tmp_path, monkeypatch):
    """Kill after step 4 (checkpoint at 3), resume: step 6 equals the uninterrupted run exactly."""
    whole = train(tiny_config(tmp_path / "whole"))
    original_step = Trainer._step
    calls = {"count": 0}

    def dying_step(self, batches):
        calls["count"] += 1
        if calls["count"] == 5:
            raise Interrupted
        return original_step(self, batches)

    monkeypatch.setattr(Trainer, "_step", dying_step)
    with pytest.raises(Interrupted):
        train(tiny_config(tmp_path / "killed"))
    monkeypatch.setattr(Trainer, "_step", original_step)
    killed_dir = tmp_path / "killed" / "tiny-run"
    assert [path.name for path in checkpoints.list_checkpoints(killed_dir)] == ["step_00000003"]
    resumed = train(tiny_config(tmp_path / "killed"), resume=True)
    expected, actual = load_state_dict(whole["checkpoint"]), load_state_dict(resumed["checkpoint"])
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert resumed["results"] == whole["results"]
    log = [json.loads(line) for line in (killed_dir / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in log if "loss" in line] == [1, 2, 3, 4, 5, 6]


def test_gradient_accumulation_matches_one_large_batch(tmp_path):
    # No rescaling: padded (ignored) pixels would weight the micro-batches' mean losses unequally.
    base = ["model.freeze_bn=true", "model.head_options={lfov: {dropout: 0.0}}", "optim.steps=2"]
    base.append("data.scale_range=null")
    one = train(tiny_config(tmp_path / "one", *base))
    two = train(tiny_config(tmp_path / "two", *base, "optim.accumulate=2"))
    expected, actual = load_state_dict(one["checkpoint"]), load_state_dict(two["checkpoint"])
    # Same gradients summed in another order; fusion layers at 100x the rate amplify the last bits.
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-3, atol=1e-4)


def test_grouped_execution_trains_like_columns(tmp_path):
    base = ["optim.steps=2", "data.scale_range=null"]
    columns = train(tiny_config(tmp_path / "columns", *base))
    grouped = train(tiny_config(tmp_path / "grouped", *base, "model.execution=grouped"))
    expected, actual = (
        load_state_dict(columns["checkpoint"]),
        load_state_dict(grouped["checkpoint"]),
    )
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-3, atol=1e-4)


def test_bad_configs_are_one_line_errors(tmp_path):
    with pytest.raises(NddrError, match="batch_size 8 must divide"):
        train(tiny_config(tmp_path, "optim.accumulate=3"))
    with pytest.raises(NddrError, match="loss_weights names 'normalz'"):
        train(tiny_config(tmp_path, "optim.loss_weights={normalz: 2}"))
    with pytest.raises(NddrError, match="task_options names 'normalz', not a task of scenes: use"):
        train(tiny_config(tmp_path, "optim.task_options={normalz: {space: encoded}}"))
    with pytest.raises(
        NddrError, match=r"task 'normals' \(normals\) has no option 'spce': it takes space"
    ):
        train(tiny_config(tmp_path, "optim.task_options.normals.spce=encoded"))
    with pytest.raises(NddrError, match="no checkpoint to resume"):
        train(tiny_config(tmp_path), resume=True)


def _torchrun(tmp_path: Path, world_size: int, name: str, *extra: str) -> dict:
    overrides = [
        f"run.out={tmp_path}",
        f"name={name}",
        "model.freeze_bn=true",
        "model.head_options={lfov: {dropout: 0.0}}",
        "data.scale_range=null",
        "optim.steps=4",
        "run.checkpoint_every=0",
        *extra,
    ]
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(world_size)]
    command += ["--standalone", "-m", "nddr", "train", str(config), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((tmp_path / name / "results.json").read_text())


def test_two_processes_under_torchrun_match_one(tmp_path):
    """gloo on CPU: the same global batch split over 2 ranks gives the same losses, metrics and
    weights as 1 process (BN frozen, no dropout: per-rank batch statistics would differ)."""
    one = _torchrun(tmp_path, 1, "one")
    two = _torchrun(tmp_path, 2, "two")
    for task, values in one["results"].items():
        assert two["results"][task] == pytest.approx(values, rel=1e-4, abs=1e-4)
    losses = {}
    for name in ("one", "two"):
        lines = (tmp_path / name / "log.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        # Only rank 0 writes: one log line per step, not one per process.
        assert [record["step"] for record in records if "loss" in record] == [1, 2, 3, 4]
        losses[name] = [record["loss"]["total"] for record in records if "loss" in record]
    assert losses["two"] == pytest.approx(losses["one"], rel=1e-4)
    expected = load_state_dict(one["checkpoint"])
    actual = load_state_dict(two["checkpoint"])
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5)


def test_fusion_shares_are_logged_every_inspect_every_steps_for_every_fusion(tmp_path):
    """run.inspect_every is its own interval, not only on steps that are also log steps."""
    for variant in ("nddr", "cross_stitch", "sluice"):
        config = tiny_config(
            tmp_path,
            f"name={variant}",
            f"model.variant={variant}",
            "optim.steps=9",
            "run.log_every=2",
            "run.inspect_every=3",
            "run.checkpoint_every=0",
        )
        train(config)
        records = [json.loads(line) for line in (config.run_dir / "log.jsonl").open()]
        assert [r["step"] for r in records if "fusion_shares" in r] == [3, 6, 9], variant
        assert [r["step"] for r in records if "loss" in r] == [2, 4, 6, 8, 9]


@pytest.mark.parametrize("method", ["uncertainty", "dwa", "upgrad", "nash_mtl"])
def test_resume_with_a_balancing_method_gives_the_same_weights(tmp_path, monkeypatch, method):
    """The balancer's state (log-variances and their momentum, DWA's window, Nash-MTL's last
    solution) is checkpointed: killed after step 4 and resumed from step 3, step 6 is bit-identical."""
    overrides = [f"optim.balancing={method}", "optim.balancing_options={}"]
    if method == "dwa":
        overrides[1] = "optim.balancing_options={window: 1}"  # the weights change every step
    whole = train(tiny_config(tmp_path / "whole", *overrides))
    original_step = Trainer._step
    calls = {"count": 0}

    def dying_step(self, batches):
        calls["count"] += 1
        if calls["count"] == 5:
            raise Interrupted
        return original_step(self, batches)

    monkeypatch.setattr(Trainer, "_step", dying_step)
    with pytest.raises(Interrupted):
        train(tiny_config(tmp_path / "killed", *overrides))
    monkeypatch.setattr(Trainer, "_step", original_step)
    resumed = train(tiny_config(tmp_path / "killed", *overrides), resume=True)
    expected, actual = load_state_dict(whole["checkpoint"]), load_state_dict(resumed["checkpoint"])
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    logs = [
        [json.loads(line) for line in (tmp_path / run / "tiny-run" / "log.jsonl").open()]
        for run in ("whole", "killed")
    ]
    weights = [[line["balancing"]["weights"] for line in log if "loss" in line] for log in logs]
    assert weights[0] == weights[1] and len(weights[0]) == 6
    assert set(weights[0][-1]) == {"segmentation", "normals"}
    if method != "upgrad":  # without conflicting gradients UPGrad keeps the loss weights
        assert weights[0][-1] != weights[0][0]


def test_uncertainty_log_variances_train_in_their_own_group_and_reach_tensorboard(tmp_path):
    config = tiny_config(tmp_path, "optim.balancing=uncertainty", "optim.steps=2")
    trainer = Trainer(config, setup("cpu"))
    group = trainer.optimizer.param_groups[-1]
    assert group["name"] == "balancing" and group["weight_decay"] == 0.0
    assert group["lr"] == config.optim.lr and group["params"] == trainer.balancer.parameters()
    before = trainer.balancer.log_variances.detach().clone()
    trainer.fit()
    assert not torch.equal(before, trainer.balancer.log_variances.detach())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(config.run_dir / "tensorboard"))
    events.Reload()
    assert "balancing/weights/normals" in events.Tags()["scalars"]
    assert "balancing/log_variances/segmentation" in events.Tags()["scalars"]


def _torchrun_balancing(tmp_path: Path, world_size: int, name: str, *overrides: str) -> dict:
    return _torchrun(tmp_path, world_size, name, "optim.balancing=upgrad", *overrides)


def test_two_processes_aggregate_their_own_micro_batches_then_average(tmp_path):
    """gloo on CPU, UPGrad: 2 ranks aggregate their halves of the global batch and average the
    results, what 1 process does with the two halves as accumulated micro-batches."""
    one = _torchrun_balancing(tmp_path, 1, "one", "optim.accumulate=2")
    two = _torchrun_balancing(tmp_path, 2, "two")
    expected = load_state_dict(one["checkpoint"])
    actual = load_state_dict(two["checkpoint"])
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5)
