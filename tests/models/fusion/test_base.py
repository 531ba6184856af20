import pytest
import torch

from nddr import NDDR, CrossStitch, Sluice
from nddr.models.fusion import diagonal_mixing
from tests.models.fusion.test_nddr import features


@pytest.mark.parametrize("fusion", [NDDR, CrossStitch, Sluice])
@pytest.mark.parametrize("num_tasks", [1, 2, 3])
def test_k_in_k_out_with_gradients(fusion, num_tasks):
    layer = fusion(6, num_tasks)
    inputs = [f.requires_grad_() for f in features(num_tasks)]
    outputs = layer(inputs)
    assert len(outputs) == num_tasks
    assert all(out.shape == inputs[0].shape for out in outputs)
    sum(out.sum() for out in outputs).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())
    assert all(x.grad is not None for x in inputs)


@pytest.mark.parametrize("fusion", [NDDR, CrossStitch, Sluice])
def test_rejects_wrong_inputs(fusion):
    layer = fusion(6, 2)
    with pytest.raises(ValueError, match="fuses 2 tasks"):
        layer(features(3))
    with pytest.raises(ValueError, match=r"\[N, 6, H, W\]"):
        layer(features(2, channels=4))
    with pytest.raises(ValueError, match="differ"):
        layer([torch.rand(2, 6, 5, 5), torch.rand(2, 6, 4, 5)])


def test_diagonal_mixing_divides_beta_over_other_tasks():
    mixing = diagonal_mixing(3, 0.9, 0.1)
    assert torch.allclose(mixing.diagonal(), torch.full((3,), 0.9))
    assert torch.allclose(mixing.sum(1), torch.ones(3))
    assert mixing[0, 1].item() == pytest.approx(0.05)
    assert diagonal_mixing(3, 0.9, 0.1, divide_beta=False)[0, 1].item() == pytest.approx(0.1)
    assert diagonal_mixing(1, 0.9, 0.1).tolist() == [[pytest.approx(0.9)]]


@pytest.mark.parametrize(
    ("fusion", "options", "message"),
    [
        (NDDR, {"init": [1.0, 0.0, 0.0]}, "NDDR init takes (alpha, beta), two finite numbers"),
        (NDDR, {"init": [float("nan"), 0.0]}, "got [nan, 0.0]"),
        (NDDR, {"init": "random"}, "or 'xavier'; got 'random'"),
        (CrossStitch, {"init": "xavier"}, "(xavier is NDDR's only); got 'xavier'"),
        (Sluice, {"init": [0.9, float("inf")]}, "Sluice init takes (alpha, beta)"),
        (
            CrossStitch,
            {"activation": False},
            "CrossStitch takes no option 'activation'; it takes init",
        ),
        (NDDR, {"divide_beta": "no"}, "NDDR option divide_beta is true or false, got 'no'"),
        (NDDR, {"bn_momentum": 1.5}, "NDDR option bn_momentum lies in [0.0, 1.0], got 1.5"),
        (NDDR, {"bn_eps": float("nan")}, "NDDR option bn_eps is a finite number, got nan"),
        (Sluice, {"num_subspaces": 2.5}, "Sluice option num_subspaces is an integer, got 2.5"),
        (Sluice, {"penalty_weight": -1}, "penalty_weight lies in [0.0, inf], got -1"),
    ],
)
def test_bad_fusion_options_are_named_before_building(fusion, options, message):
    with pytest.raises(ValueError) as raised:
        fusion.check_options(options)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    if "init" in options:
        with pytest.raises(ValueError, match="init takes"):
            fusion(4, 2, **options)


def test_good_fusion_options_pass_the_check():
    NDDR.check_options({"init": "xavier", "bn_eps": 0.0, "activation": False})
    CrossStitch.check_options({"init": [1, 0], "per_channel": False})
    Sluice.check_options({"init": (0.5, 0.5), "num_subspaces": 4, "penalty_weight": 0})
    assert CrossStitch(4, 2, init=[1, 0]).init == (1.0, 0.0)
