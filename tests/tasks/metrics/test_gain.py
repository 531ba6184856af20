import pytest

from nddr.errors import NddrError
from nddr.tasks.metrics import (
    GAIN_CONVENTIONS,
    multi_task_gain,
)


@pytest.mark.parametrize("convention", GAIN_CONVENTIONS)
def test_multi_task_gain_signs_by_direction(convention):
    directions = {"seg": {"miou": True}, "normals": {"mean": False}}
    single = {"seg": {"miou": 0.4}, "normals": {"mean": 25.0}}
    # +25% mIoU and 20% lower angle error: both gains.
    assert multi_task_gain(
        {"seg": {"miou": 0.5}, "normals": {"mean": 20.0}}, single, directions, convention=convention
    ) == pytest.approx(22.5)
    assert multi_task_gain(single, single, directions, convention=convention) == 0
    with pytest.raises(NddrError, match="normals/mean"):
        multi_task_gain({"seg": {"miou": 0.5}}, single, directions, convention=convention)


def test_multi_task_gain_conventions_weigh_metrics_or_tasks():
    # Task A has two metrics: +10% and +30% (mean +20%); task B one: -10%.
    directions = {"a": {"x": True, "y": False}, "b": {"z": True}}
    single = {"a": {"x": 10.0, "y": 10.0}, "b": {"z": 10.0}}
    multi = {"a": {"x": 11.0, "y": 7.0}, "b": {"z": 9.0}}
    # Every metric once: (10 + 30 - 10) / 3; every task once: (20 - 10) / 2.
    gains = {
        convention: multi_task_gain(multi, single, directions, convention=convention)
        for convention in ("per_metric", "per_task")
    }
    assert gains == pytest.approx({"per_metric": 10.0, "per_task": 5.0})
    assert "Navon" in GAIN_CONVENTIONS["per_metric"]
    assert "Maninis" in GAIN_CONVENTIONS["per_task"]
    with pytest.raises(NddrError, match="unknown Delta_m convention 'per_tsk': did you mean"):
        multi_task_gain(multi, single, directions, convention="per_tsk")
