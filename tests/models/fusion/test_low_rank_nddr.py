import copy

import pytest
import torch

import nddr
from nddr.errors import NddrError
from nddr.models.fusion import NDDR, CrossStitch, LowRankNDDR
from nddr.models.fusion.low_rank_nddr import resolve_rank
from tests.helpers import randomise_batch_norm
from tests.models.fusion.test_nddr import features


def _randomised(layer: LowRankNDDR) -> LowRankNDDR:
    with torch.no_grad():
        for part in (layer.diagonal, layer.down, layer.up):
            part.weight.uniform_(-1, 1)
    return layer.eval()


@pytest.mark.parametrize("rank", [1, 3, 8])
def test_identity_init_passes_the_columns_through_whatever_the_rank(rank):
    layer = LowRankNDDR(8, 2, rank=rank, init=(1.0, 0.0), bn_eps=0.0).eval()
    assert layer.rank == rank and not layer.up.weight.any() and layer.down.weight.any()
    inputs = features(2, channels=8)
    assert all(torch.equal(out, x) for out, x in zip(layer(inputs), inputs))


def test_down_projection_starts_with_orthonormal_rows():
    """So a step on U moves D + U V as far as NDDR's step would in V's r directions."""
    down = LowRankNDDR(16, 2, rank=5).down.weight[:, :, 0, 0]
    assert torch.allclose(down @ down.T, torch.eye(5), atol=1e-5)


@pytest.mark.parametrize("num_tasks", [2, 3])
def test_diagonal_init_is_nddrs(num_tasks):
    low_rank = LowRankNDDR(6, num_tasks, rank=2, init=(0.8, 0.2), bn_eps=0.0).eval()
    full = NDDR(6, num_tasks, init=(0.8, 0.2), bn_eps=0.0).eval()
    assert torch.allclose(low_rank.dense_weight().float(), full.conv.weight[:, :, 0, 0])
    inputs = features(num_tasks)
    for ours, theirs in zip(low_rank(inputs), full(inputs)):
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_the_diagonal_part_is_a_per_channel_cross_stitch_unit():
    layer = _randomised(LowRankNDDR(5, 3, rank=2, activation=False, bn_eps=0.0))
    with torch.no_grad():
        layer.up.weight.zero_()
    stitch = CrossStitch(5, 3)
    with torch.no_grad():
        stitch.weight.copy_(layer.diagonal.weight)
    inputs = features(3, channels=5)
    for ours, theirs in zip(layer(inputs), stitch(inputs)):
        assert torch.allclose(ours, theirs, atol=1e-5)


def test_is_the_dense_nddr_of_diagonal_plus_low_rank():
    layer = _randomised(LowRankNDDR(6, 2, rank=3, activation=False, bn_eps=0.0))
    dense = layer.dense_weight()
    diagonal_only = copy.deepcopy(layer)
    with torch.no_grad():
        diagonal_only.up.weight.zero_()
    assert torch.linalg.matrix_rank(dense - diagonal_only.dense_weight()) == 3
    full = NDDR(6, 2, activation=False, bn_eps=0.0).eval()
    with torch.no_grad():
        full.conv.weight.copy_(dense[:, :, None, None])
    inputs = features(2)
    for ours, theirs in zip(layer(inputs), full(inputs)):
        assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(layer.block_norms(), full.block_norms())


def test_block_norms_fold_the_batch_norm_like_nddrs():
    layer = _randomised(LowRankNDDR(4, 2, rank=2))
    randomise_batch_norm(layer)
    full = NDDR(4, 2)
    with torch.no_grad():
        full.conv.weight.copy_(layer.dense_weight()[:, :, None, None])
        full.bn.load_state_dict(layer.bn.state_dict())
    assert torch.allclose(layer.block_norms(fold_bn=True), full.block_norms(fold_bn=True))


def test_stacked_forward_is_the_per_task_forward():
    layer = _randomised(LowRankNDDR(8, 2, rank=2))
    inputs = features(2, channels=8)
    stacked = layer.forward_stacked(torch.cat(inputs, dim=1))
    assert torch.allclose(stacked, torch.cat(layer(inputs), dim=1), atol=1e-6)


def test_the_correction_learns_from_zero():
    layer = LowRankNDDR(8, 2, rank=2).train()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    sum(out.square().mean() for out in layer(features(2, channels=8))).backward()
    optimizer.step()
    assert layer.up.weight.any()


def test_rank_is_a_fraction_of_each_stage_raised_to_the_floor_unless_given():
    assert [resolve_rank(c, None, 0.125, min_rank=1) for c in (4, 16, 2048)] == [1, 2, 256]
    assert [resolve_rank(c, None, 0.125, min_rank=16) for c in (8, 64, 256, 2048)] == [
        8,
        16,
        32,
        256,
    ]
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr_lowrank")
    assert [fusion.rank for fusion in network.fusions] == [16, 32, 32, 32, 32]
    with torch.device("meta"):
        resnet = nddr.build_network("resnet50", {"a": 2, "b": 3}, "nddr_lowrank")
    assert [fusion.rank for fusion in resnet.fusions] == [32, 32, 64, 128, 256]
    flat = nddr.build_network(
        "tiny", {"a": 2, "b": 3}, "nddr_lowrank", fusion_options={"min_rank": 1}
    )
    assert [fusion.rank for fusion in flat.fusions] == [2, 4, 8, 8, 8]
    fixed = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr_lowrank", fusion_options={"rank": 5})
    assert [fusion.rank for fusion in fixed.fusions] == [5] * 5
    # K^2 C diagonal weights and 2 K C r low-rank ones, against NDDR's K^2 C^2.
    layer = LowRankNDDR(512, 2)
    weights = (layer.diagonal.weight, layer.down.weight, layer.up.weight)
    assert sum(w.numel() for w in weights) == 4 * 512 + 2 * 2 * 512 * 64


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rank": 0}, "LowRankNDDR option rank lies in [1, inf], got 0"),
        ({"rank": 2.5}, "LowRankNDDR option rank is an integer or null, got 2.5"),
        ({"rank_fraction": 0}, "LowRankNDDR option rank_fraction lies in (0, 1], got 0"),
        ({"rank_fraction": 1.5}, "LowRankNDDR option rank_fraction lies in (0, 1], got 1.5"),
        ({"min_rank": 0}, "LowRankNDDR option min_rank lies in [1, inf], got 0"),
        ({"min_rank": 4.0}, "LowRankNDDR option min_rank is an integer, got 4.0"),
        (
            {"groups": 8},
            "LowRankNDDR takes no option 'groups'; it takes rank_fraction, min_rank, rank",
        ),
    ],
)
def test_bad_options_are_one_line(options, message):
    with pytest.raises(NddrError, match="bad fusion option") as error:
        nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr_lowrank", fusion_options=options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_rank_above_a_stage_width_names_the_backbone():
    with pytest.raises(NddrError) as error:
        nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr_lowrank", fusion_options={"rank": 20})
    message = str(error.value)
    assert "does not fit backbone 'tiny', whose stages have 16, 32, 64, 64, 64" in message
    assert "rank=20 must lie in [1, 16]" in message and "\n" not in message
