import math

import pytest
import torch

from nddr.tasks.metrics import (
    DepthMetric,
)


def test_depth_hand_worked():
    prediction = torch.tensor([1.0, 2.0, 4.0, 9.0]).view(1, 1, 1, 4)
    target = torch.tensor([1.0, 1.0, 2.0, 0.0]).view(1, 1, 1, 4)
    metric = DepthMetric()
    metric.update(prediction, target)
    result = metric.compute()
    assert result["abs_error"].item() == pytest.approx(1.0)
    assert result["rel_error"].item() == pytest.approx(2 / 3)
    assert result["rmse"].item() == pytest.approx(math.sqrt(5 / 3))
    assert result["delta_1.25"].item() == pytest.approx(100 / 3)
