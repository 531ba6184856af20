import pytest

from nddr.benchmark import (
    run_pipeline_benchmark,
)
from nddr.training.config import build_config
from tests.helpers import TINY


def test_pipeline_benchmark_compares_supply_with_consumption():
    config = build_config(TINY, ["run.device=cpu"])
    report = run_pipeline_benchmark(config, batches=3, repeats=2)
    assert report.samples_per_s > 0 and report.train_images_per_s > 0
    assert report.headroom == pytest.approx(report.samples_per_s / report.train_images_per_s)
    assert report.to_dict()["dataset"] == "scenes"


def test_the_pipeline_benchmark_steps_with_the_trainers_optimizer_for_the_config(monkeypatch):
    """The training steps timed are the trainer's, with its optimizer for the config's ``optim``
    (rates, decay, momentum), not a default one."""
    from nddr.benchmark import pipeline
    from nddr.training.optimizer import training_optimizer

    seen = {}

    def record(runners, repeats, warmup, kinds):
        seen["runner"] = runners["config"]
        return {"config": {"train": [1.0]}}

    monkeypatch.setattr(pipeline, "time_runners", record)
    config = build_config(TINY, ["run.device=cpu", "optim.lr=0.3", "optim.momentum=0.5"])
    run_pipeline_benchmark(config, batches=1, repeats=1)
    runner = seen["runner"]
    expected = training_optimizer(runner.network, config.optim)
    assert [
        {k: v for k, v in group.items() if k != "params"} for group in runner.optimizer.param_groups
    ] == [{k: v for k, v in group.items() if k != "params"} for group in expected.param_groups]
    assert runner.optimizer.defaults["momentum"] == 0.5
