import pytest
import torch

from nddr import NDDR, CrossStitch, LayerSelection, Shortcut, Sluice
from nddr.models.fusion import diagonal_mixing


def features(num_tasks: int, channels: int = 6, size: int = 5) -> list[torch.Tensor]:
    return [torch.rand(2, channels, size, size) for _ in range(num_tasks)]


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


@pytest.mark.parametrize("num_tasks", [2, 3])
def test_nddr_diagonal_init_blocks(num_tasks):
    layer = NDDR(4, num_tasks, init=(0.8, 0.2))
    eye = torch.eye(4)
    for k in range(num_tasks):
        weight = layer.task_weight(k)
        assert weight.shape == (4, 4 * num_tasks)
        for j in range(num_tasks):
            expected = 0.8 if j == k else 0.2 / (num_tasks - 1)
            assert torch.allclose(weight[:, 4 * j : 4 * (j + 1)], expected * eye)


def test_nddr_xavier_init_uses_per_task_fans():
    layer = NDDR(64, 2, init="xavier")
    bound = (6 / (64 * 2 + 64)) ** 0.5
    weight = layer.task_weight(0)
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.9 * bound
    assert not torch.allclose(layer.task_weight(0), layer.task_weight(1))


def test_nddr_is_concat_conv_bn_relu_per_task():
    layer = NDDR(3, 2, init="xavier").train()
    inputs = features(2, channels=3)
    outputs = layer(inputs)
    concatenated = torch.cat(inputs, 1)
    for k in range(2):
        projected = torch.einsum("oc,nchw->nohw", layer.task_weight(k), concatenated)
        mean = projected.mean((0, 2, 3), keepdim=True)
        var = projected.var((0, 2, 3), unbiased=False, keepdim=True)
        expected = torch.relu((projected - mean) / torch.sqrt(var + 1e-3))
        assert torch.allclose(outputs[k], expected, atol=1e-5)
    assert layer.bn.momentum == 0.05 and layer.bn.eps == 1e-3


def test_nddr_rejects_unknown_init():
    with pytest.raises(ValueError, match="xavier"):
        NDDR(4, 2, init="orthogonal")


@pytest.mark.parametrize("num_tasks", [2, 3])
def test_nddr_generalises_cross_stitch_scalar(num_tasks):
    """Paper §3.4: NDDR restricted to alpha*I / beta*I blocks is a cross-stitch unit before BN."""
    nddr = NDDR(6, num_tasks, init=(0.7, 0.3))
    stitch = CrossStitch(6, num_tasks, init=(0.7, 0.3), per_channel=False)
    inputs = features(num_tasks)
    projected = nddr.project(inputs).split(6, dim=1)
    for ours, theirs in zip(projected, stitch(inputs)):
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_nddr_generalises_per_channel_cross_stitch():
    """With per-channel units the NDDR blocks are diagonal matrices holding the units."""
    stitch = CrossStitch(5, 3)
    with torch.no_grad():
        stitch.weight.uniform_(-1, 1)
    nddr = NDDR(5, 3)
    with torch.no_grad():
        blocks = nddr.conv.weight.view(3, 5, 3, 5)
        blocks.zero_()
        for k in range(3):
            for j in range(3):
                blocks[k, :, j, :] = torch.diag(stitch.weight[k, j])
    inputs = features(3, channels=5)
    for ours, theirs in zip(nddr.project(inputs).split(5, dim=1), stitch(inputs)):
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_cross_stitch_init_and_mix():
    stitch = CrossStitch(4, 3)
    assert stitch.weight.shape == (3, 3, 4)
    assert torch.allclose(stitch.weight[0, 0], torch.full((4,), 0.9))
    assert torch.allclose(stitch.weight[0, 2], torch.full((4,), 0.05))
    inputs = features(3, channels=4)
    out = stitch(inputs)
    assert torch.allclose(out[1], 0.05 * inputs[0] + 0.9 * inputs[1] + 0.05 * inputs[2], atol=1e-6)


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


def test_layer_selection_starts_at_last_stage_and_learns_all():
    selection = LayerSelection([4, 8, 8])
    outputs = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4), torch.rand(2, 8, 4, 4)]
    mixed = selection(outputs)
    assert torch.equal(mixed, outputs[-1])
    mixed.sum().backward()
    assert selection.beta.grad is not None and (selection.beta.grad[:-1] != 0).all()


def test_shortcut_concatenates_resized_stage_outputs():
    shortcut = Shortcut([64, 128, 256, 512, 512])
    assert shortcut.conv.in_channels == 1472 and shortcut.conv.out_channels == 512
    outputs = [
        torch.rand(2, c, s, s) for c, s in [(64, 16), (128, 8), (256, 4), (512, 4), (512, 4)]
    ]
    assert shortcut(outputs).shape == (2, 512, 4, 4)


def test_sluice_penalty_is_skipped_without_autograd():
    sluice = Sluice(4, 2)
    with torch.no_grad():
        sluice(features(2, channels=4))
    assert sluice.orthogonality_penalty is None
