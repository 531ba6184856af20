from pathlib import PurePosixPath

import pytest
import torch
import torch.nn.functional as F

from nddr.data.base import TargetSpec
from nddr.errors import NddrError
from nddr.tasks import Regression, build_task


def test_regression_head_loss_prediction_and_saved_value(tmp_path):
    task = build_task("score", TargetSpec("regression"))
    assert isinstance(task, Regression) and task.out_channels == 1 and not task.dense
    assert not task.head_spec().dense
    output = torch.tensor([[1.5], [-2.0], [0.25]])
    target = torch.tensor([1.0, 1.0, 0.25])
    assert task.loss(output, target).item() == pytest.approx((0.5 + 3.0 + 0.0) / 3)
    metric = task.metric()
    task.update_metric(metric, output, target)
    result = {key: float(value) for key, value in metric.compute().items()}
    assert result == pytest.approx({"mae": 3.5 / 3, "rmse": ((0.25 + 9.0) / 3) ** 0.5})
    assert task.save_prediction(
        output[:1], task.predict(output[:1])[0], tmp_path, PurePosixPath("x")
    ) == {"value": 1.5}
    assert task.picture(1.5) == "score 1.5"


def test_regression_smooth_l1_option():
    task = build_task("score", TargetSpec("regression"), options={"criterion": "smooth_l1"})
    output, target = torch.tensor([[0.5], [3.0]]), torch.tensor([0.0, 0.0])
    expected = F.smooth_l1_loss(output[:, 0], target)
    assert task.loss(output, target).item() == pytest.approx(expected.item())
    assert task.options == {"criterion": "smooth_l1"}
    with pytest.raises(NddrError, match="criterion = 'l2' is not valid: use l1 or smooth_l1"):
        build_task("score", TargetSpec("regression"), options={"criterion": "l2"})
