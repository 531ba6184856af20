"""Evaluation over a split: the tasks' own metrics, train mode restored, NaN outputs refused."""

import pytest
import torch

import nddr
from nddr.data.base import TargetSpec
from nddr.errors import NddrError
from nddr.tasks import build_task
from nddr.training.evaluate import evaluate, format_results


def _setup():
    torch.manual_seed(0)
    tasks = [build_task("seg", TargetSpec("segmentation", 3))]
    network = nddr.build_network("tiny", [task.head_spec() for task in tasks], "single")
    batches = [
        {"image": torch.randn(2, 3, 16, 16), "seg": torch.randint(0, 3, (2, 16, 16))}
        for _ in range(3)
    ]
    return network, tasks, batches


def test_metrics_are_the_tasks_metric_over_every_batch():
    network, tasks, batches = _setup()
    network.train()
    results = evaluate(network, tasks, batches, torch.device("cpu"))
    assert network.training
    (task,) = tasks
    metric = task.metric()
    network.eval()
    with torch.no_grad():
        for batch in batches:
            task.update_metric(metric, network(batch["image"])["seg"], batch["seg"])
    expected = {key: float(value) for key, value in metric.compute().items()}
    assert results == {"seg": expected}
    assert 0 <= results["seg"]["miou"] <= 100


def test_nonfinite_outputs_are_refused_with_their_task(monkeypatch):
    network, tasks, batches = _setup()
    head = network.heads["seg"]
    head.register_forward_hook(lambda module, args, output: output * float("nan"))
    with pytest.raises(NddrError, match=r"NaN or Inf values: 'seg'"):
        evaluate(network, tasks, batches, torch.device("cpu"))


def test_format_puts_encoded_normal_metrics_on_their_own_line():
    text = format_results(
        {
            "seg": {"miou": 0.5, "pixel_accuracy": 0.75},
            "normals": {"mean": 20.0, "encoded_mean": 18.0},
        }
    )
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("seg") and "miou" in lines[0] and "pixel_accuracy" in lines[0]
    assert "mean 20" in lines[1] and "encoded" not in lines[1]
    assert lines[2].strip().startswith("encoded_mean 18")
