import math

import numpy as np
import pytest
import torch

from nddr.errors import NddrError
from nddr.tasks.metrics import RegressionMetric


def test_mae_and_rmse_pool_over_batches():
    rng = np.random.default_rng(0)
    prediction, target = rng.normal(size=(2, 7)), rng.normal(size=(2, 7))
    metric = RegressionMetric()
    metric.update(
        torch.from_numpy(prediction[:, :3].ravel()), torch.from_numpy(target[:, :3].ravel())
    )
    metric.update(
        torch.from_numpy(prediction[:, 3:].ravel()), torch.from_numpy(target[:, 3:].ravel())
    )
    result = metric.compute()
    error = prediction - target
    assert float(result["mae"]) == pytest.approx(np.abs(error).mean())
    assert float(result["rmse"]) == pytest.approx(np.sqrt(np.square(error).mean()))


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_empty_is_nan_and_shapes_must_match():
    metric = RegressionMetric()
    assert math.isnan(float(metric.compute()["mae"]))
    with pytest.raises(NddrError, match="one value per image"):
        metric.update(torch.zeros(2, 1), torch.zeros(2))
