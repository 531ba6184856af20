import pytest
import torch

from nddr import NDDR, CrossStitch


def features(num_tasks: int, channels: int = 6, size: int = 5) -> list[torch.Tensor]:
    return [torch.rand(2, channels, size, size) for _ in range(num_tasks)]


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
