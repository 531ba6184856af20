"""Loss-based balancing: the paper's weighted sum, uncertainty weighting and DWA by their
papers' formulas, their states round-trip, bad values are one-line errors."""

import math

import pytest
import torch

from nddr.errors import NddrError
from nddr.training.balancing.loss_based import (
    DynamicWeightAverage,
    FixedWeights,
    UncertaintyWeighting,
)

WEIGHTS = {"segmentation": 1.0, "normals": 20.0}


def _losses(a: float, b: float) -> dict[str, torch.Tensor]:
    return {"segmentation": torch.tensor(a), "normals": torch.tensor(b)}


def test_fixed_is_the_weighted_sum():
    balancer = FixedWeights(WEIGHTS)
    assert balancer.combine(_losses(2.0, 0.5)).item() == pytest.approx(2.0 + 20.0 * 0.5)
    assert balancer.logged() == {"weights": WEIGHTS}
    assert balancer.parameters() == [] and balancer.state_dict() == {}


def test_uncertainty_weighting_is_kendalls_and_learns_its_log_variances():
    balancer = UncertaintyWeighting(WEIGHTS, init=0.5, device=torch.device("cpu"))
    total = balancer.combine(_losses(2.0, 0.5))
    expected = sum(
        0.5 * math.exp(-0.5) * weight * loss + 0.25
        for weight, loss in zip(WEIGHTS.values(), (2.0, 0.5))
    )
    assert total.item() == pytest.approx(expected)
    total.backward()
    # d/ds (exp(-s) w L / 2 + s / 2) = (1 - exp(-s) w L) / 2
    grads = balancer.log_variances.grad.tolist()
    assert grads == pytest.approx([(1 - math.exp(-0.5) * 2.0) / 2, (1 - math.exp(-0.5) * 10) / 2])
    assert balancer.weights()["normals"] == pytest.approx(20.0 * 0.5 * math.exp(-0.5))
    restored = UncertaintyWeighting(WEIGHTS, init=0.0, device=torch.device("cpu"))
    with torch.no_grad():
        balancer.log_variances.add_(0.25)
    restored.load_state_dict(balancer.state_dict())
    assert torch.equal(restored.log_variances, balancer.log_variances)
    assert restored.logged()["log_variances"]["normals"] == pytest.approx(0.75)


def test_uncertainty_weighting_refuses_a_non_finite_start():
    with pytest.raises(NddrError, match=r"optim.balancing_options.init = inf is not finite"):
        UncertaintyWeighting(WEIGHTS, init=math.inf, device=torch.device("cpu"))


def _dwa(window: int | None = 2, steps_per_epoch: int = 5, reduce=dict) -> DynamicWeightAverage:
    return DynamicWeightAverage(
        WEIGHTS, temperature=2.0, window=window, steps_per_epoch=steps_per_epoch, reduce=reduce
    )


def test_dwa_weights_follow_the_ratio_of_the_last_two_window_means():
    balancer = _dwa()
    steps = [(4.0, 1.0), (4.0, 1.0), (2.0, 1.0), (2.0, 1.0), (9.0, 9.0)]
    for seen, (a, b) in enumerate(steps, start=1):
        balancer.end_step({"segmentation": a, "normals": b, "total": a + b})
        if seen < 4:  # the first two windows train with lambda = 1
            assert balancer.weights() == WEIGHTS
    ratios = torch.tensor([2.0 / 4.0, 1.0 / 1.0], dtype=torch.float64)
    lambdas = 2 * torch.softmax(ratios / 2.0, 0)
    assert balancer.weights()["segmentation"] == pytest.approx(lambdas[0].item())
    assert balancer.weights()["normals"] == pytest.approx(20.0 * lambdas[1].item())
    assert balancer.weights()["segmentation"] < 1.0  # the task whose loss fell faster
    restored = _dwa()
    restored.load_state_dict(balancer.state_dict())
    assert restored.state_dict() == balancer.state_dict() and restored.count == 1
    balancer.end_step({"segmentation": 9.0, "normals": 1.0})
    restored.end_step({"segmentation": 9.0, "normals": 1.0})
    assert restored.weights() == balancer.weights()


def test_dwa_window_defaults_to_an_epoch_and_means_are_over_processes():
    reduced = []

    def reduce(values):
        reduced.append(values)
        return {name: 2 * value for name, value in values.items()}

    balancer = _dwa(window=None, steps_per_epoch=3, reduce=reduce)
    assert balancer.window == 3
    for _ in range(3):
        balancer.end_step({"segmentation": 1.0, "normals": 3.0})
    assert reduced == [{"segmentation": 1.0, "normals": 3.0}]
    assert balancer.history == [[2.0, 6.0]]
    balancer.end_step({"normals": 3.0})  # a skipped step: not counted
    assert balancer.count == 0


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"temperature": 0.0, "window": 2}, "temperature = 0.0 must be a number > 0"),
        ({"temperature": 2.0, "window": 0}, "window = 0 must be a number of steps >= 1"),
    ],
)
def test_dwa_refuses_bad_values(options, problem):
    with pytest.raises(NddrError, match=problem):
        DynamicWeightAverage(WEIGHTS, steps_per_epoch=1, reduce=dict, **options)
