import pytest
import torch

from nddr import LayerSelection, Sluice
from tests.models.fusion.test_nddr import features


def test_sluice_init_keeps_subspaces_and_mixes_tasks():
    sluice = Sluice(8, 2, init=(0.9, 0.1))
    assert sluice.alpha.shape == (4, 4)
    inputs = features(2, channels=8)
    out = sluice(inputs)
    assert torch.allclose(out[0], 0.9 * inputs[0] + 0.1 * inputs[1], atol=1e-6)


def test_sluice_alpha_mixes_subspaces():
    sluice = Sluice(4, 2)
    with torch.no_grad():
        sluice.alpha.zero_()
        sluice.alpha[0, 3] = 1.0  # task 0 subspace 0 <- task 1 subspace 1
    inputs = features(2, channels=4)
    out = sluice(inputs)
    assert torch.allclose(out[0][:, :2], inputs[1][:, 2:])
    assert torch.count_nonzero(out[0][:, 2:]) == 0


def test_sluice_orthogonality_penalty():
    sluice = Sluice(4, 1)
    x = torch.zeros(1, 4, 1, 2)
    x[0, 0, 0, 0] = 1.0  # subspace 0 lives on pixel 0
    x[0, 2, 0, 1] = 1.0  # subspace 1 on pixel 1: orthogonal
    sluice([x])
    assert sluice.orthogonality_penalty.item() == 0.0
    y = torch.zeros(1, 4, 1, 2)
    y[0, 0, 0, 0] = 2.0
    y[0, 2, 0, 0] = 3.0  # same pixel: (G1^T G2)^2 = 36 over ||G1||^2 ||G2||^2 = 4 x 9 -> 1
    y[0, 3, 0, 1] = 2.0  # G2 also on pixel 1: 36 / (4 x 13)
    sluice([y])
    assert sluice.orthogonality_penalty.item() == pytest.approx(0.1 * 36 / 52)
    heavier = Sluice(4, 1, penalty_weight=1.0)
    heavier([100 * y])  # scale-free
    assert heavier.orthogonality_penalty.item() == pytest.approx(36 / 52)


def test_sluice_needs_divisible_channels():
    with pytest.raises(ValueError, match="5 channels do not divide by 2"):
        Sluice(5, 2)


def test_layer_selection_starts_at_last_stage_and_learns_all():
    selection = LayerSelection([4, 8, 8])
    outputs = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4), torch.rand(2, 8, 4, 4)]
    mixed = selection(outputs)
    assert torch.equal(mixed, outputs[-1])
    mixed.sum().backward()
    assert selection.beta.grad is not None and (selection.beta.grad[:-1] != 0).all()


def test_sluice_penalty_is_skipped_without_autograd():
    sluice = Sluice(4, 2)
    with torch.no_grad():
        sluice(features(2, channels=4))
    assert sluice.orthogonality_penalty is None
