import pytest
import torch

import nddr
from nddr.errors import NddrError
from nddr.models.fusion import NDDR, GroupedNDDR
from nddr.models.fusion.grouped_nddr import (
    deinterleave,
    interleave,
    interleaved_to_stacked,
    resolve_groups,
    stacked_to_interleaved,
)
from tests.helpers import randomise_batch_norm
from tests.models.fusion.test_nddr import features


def _dense(layer: GroupedNDDR) -> torch.Tensor:
    """The grouped weights written out as NDDR's dense [K*C, K*C] matrix, group by group."""
    k, c, g = layer.num_tasks, layer.channels, layer.groups
    s = c // g
    grouped = layer.conv.weight[:, :, 0, 0].detach()
    dense = torch.zeros(k * c, k * c)
    for group in range(g):
        for out_task in range(k):
            rows = grouped[(group * k + out_task) * s : (group * k + out_task + 1) * s]
            for in_task in range(k):
                block = rows[:, in_task * s : (in_task + 1) * s]
                out0, in0 = out_task * c + group * s, in_task * c + group * s
                dense[out0 : out0 + s, in0 : in0 + s] = block
    return dense


def _randomised(layer: GroupedNDDR) -> GroupedNDDR:
    with torch.no_grad():
        layer.conv.weight.uniform_(-1, 1)
    return layer.eval()


def test_interleaving_is_undone():
    inputs = features(3, channels=8)
    fused = interleave(inputs, 4)
    assert fused.shape == (2, 24, 5, 5)
    # Group 1 holds channels 2..3 of task 0, then of task 1, then of task 2.
    assert torch.equal(fused[:, 6:8], inputs[0][:, 2:4])
    assert torch.equal(fused[:, 8:10], inputs[1][:, 2:4])
    back = deinterleave(fused, 3, 4, like=inputs[0])
    assert all(torch.equal(a, b) and a.is_contiguous() for a, b in zip(back, inputs))
    stacked = torch.cat(inputs, dim=1)
    assert torch.equal(stacked_to_interleaved(stacked, 3, 4), fused)
    assert torch.equal(interleaved_to_stacked(fused, 3, 4), stacked)


@pytest.mark.parametrize("num_tasks", [2, 3])
def test_diagonal_init_is_nddrs(num_tasks):
    """The diagonal init lies within the groups: the layer is NDDR's at the same init."""
    grouped = GroupedNDDR(
        8, num_tasks, groups=4, min_group_width=1, init=(0.8, 0.2), bn_eps=0.0
    ).eval()
    full = NDDR(8, num_tasks, init=(0.8, 0.2), bn_eps=0.0).eval()
    inputs = features(num_tasks, channels=8)
    assert torch.allclose(_dense(grouped), full.conv.weight[:, :, 0, 0])
    for ours, theirs in zip(grouped(inputs), full(inputs)):
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_identity_init_passes_the_columns_through():
    layer = GroupedNDDR(16, 2, groups=8, min_group_width=1, init=(1.0, 0.0), bn_eps=0.0).eval()
    inputs = features(2, channels=16)
    assert all(torch.equal(out, x) for out, x in zip(layer(inputs), inputs))


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_is_the_dense_nddr_of_its_blocks(groups):
    """Any trained weights: the same function as NDDR with zeros outside the groups."""
    layer = _randomised(
        GroupedNDDR(6, 2, groups=groups, min_group_width=1, activation=False, bn_eps=0.0)
    )
    full = NDDR(6, 2, activation=False, bn_eps=0.0).eval()
    with torch.no_grad():
        full.conv.weight.copy_(_dense(layer)[:, :, None, None])
    inputs = features(2)
    for ours, theirs in zip(layer(inputs), full(inputs)):
        assert torch.allclose(ours, theirs, atol=1e-5)
    norms = torch.linalg.vector_norm(_dense(layer).double().view(2, 6, 2, 6), dim=(1, 3))
    assert torch.allclose(layer.block_norms(), norms)


def test_block_norms_fold_the_batch_norm_of_each_output_channel():
    layer = _randomised(GroupedNDDR(4, 2, groups=2, min_group_width=1))
    randomise_batch_norm(layer)
    scale = layer.bn.weight.detach() / torch.sqrt(layer.bn.running_var + layer.bn.eps)
    # Output channels are in group order; fold them row by row into the grouped weight.
    folded = _randomised(GroupedNDDR(4, 2, groups=2, min_group_width=1))
    with torch.no_grad():
        folded.conv.weight.copy_(layer.conv.weight * scale[:, None, None, None])
    assert torch.allclose(layer.block_norms(fold_bn=True), folded.block_norms())


def test_stacked_forward_is_the_per_task_forward():
    layer = _randomised(GroupedNDDR(8, 2, groups=4, min_group_width=1))
    inputs = features(2, channels=8)
    stacked = layer.forward_stacked(torch.cat(inputs, dim=1))
    assert torch.allclose(stacked, torch.cat(layer(inputs), dim=1))


def test_channels_last_inputs_give_channels_last_outputs():
    layer = GroupedNDDR(8, 2, groups=4, min_group_width=1).eval()
    inputs = [x.contiguous(memory_format=torch.channels_last) for x in features(2, channels=8)]
    assert all(out.is_contiguous(memory_format=torch.channels_last) for out in layer(inputs))


def test_weights_and_flops_are_nddrs_over_the_groups():
    assert GroupedNDDR(64, 2, groups=8, min_group_width=1).conv.weight.numel() == (2 * 64) ** 2 // 8


def test_groups_keep_the_least_group_width_on_narrow_stages():
    assert [resolve_groups(c, 8, min_group_width=16) for c in (16, 32, 64, 128, 2048)] == [
        1,
        2,
        4,
        8,
        8,
    ]
    assert resolve_groups(48, 6, min_group_width=16) == 3  # the largest divisor of 6 that fits
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr_grouped")
    assert [fusion.groups for fusion in network.fusions] == [1, 1, 2, 2, 2]
    with torch.device("meta"):
        resnet = nddr.build_network("resnet50", {"a": 2, "b": 3}, "nddr_grouped")
    assert [fusion.groups for fusion in resnet.fusions] == [2, 8, 8, 8, 8]
    flat = nddr.build_network(
        "tiny", {"a": 2, "b": 3}, "nddr_grouped", fusion_options={"min_group_width": 1}
    )
    assert [fusion.groups for fusion in flat.fusions] == [8] * 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"groups": 0}, "GroupedNDDR option groups lies in [1, inf], got 0"),
        ({"groups": 2.5}, "GroupedNDDR option groups is an integer, got 2.5"),
        ({"min_group_width": 0}, "GroupedNDDR option min_group_width lies in [1, inf], got 0"),
        ({"rank": 4}, "GroupedNDDR takes no option 'rank'; it takes groups, min_group_width, init"),
        ({"init": "xavier"}, "GroupedNDDR init takes (alpha, beta)"),
    ],
)
def test_bad_options_are_one_line(options, message):
    with pytest.raises(NddrError, match="bad fusion option") as error:
        nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr_grouped", fusion_options=options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_groups_that_do_not_divide_a_stage_name_the_backbone():
    with pytest.raises(NddrError) as error:
        nddr.build_network(
            "tiny",
            {"a": 2, "b": 3},
            "nddr_grouped",
            fusion_options={"groups": 3, "min_group_width": 1},
        )
    message = str(error.value)
    assert "does not fit backbone 'tiny', whose stages have 16, 32, 64, 64, 64" in message
    assert "16 channels do not divide by 3" in message and "\n" not in message
