"""Fusion shares (nddr.models.analysis): block-norm shares, their table, record and heatmap."""

import json

import pytest
import torch
from PIL import Image
from torch import nn

import nddr
from nddr import NddrError
from nddr.models.analysis import (
    CELL,
    format_shares,
    fusion_shares,
    share_colour,
    shares_heatmap,
    shares_record,
)

TWO_TASKS = {"seg": 4, "normals": 3}


THREE_TASKS = {"seg": 4, "normals": 3, "depth": 1}


def _network(tasks=TWO_TASKS, variant="nddr", **fusion_options):
    return nddr.build_network("tiny", tasks, variant, fusion_options=fusion_options)


def _expected(num_tasks, own, other):
    return [[own if k == j else other for j in range(num_tasks)] for k in range(num_tasks)]


def _assert_shares(layer, expected, rtol=0.0, atol=1e-6):
    shares = layer.shares if hasattr(layer, "shares") else layer
    torch.testing.assert_close(
        torch.tensor(shares, dtype=torch.float64),
        torch.as_tensor(expected, dtype=torch.float64),
        rtol=rtol,
        atol=atol,
    )


def test_diagonal_init_gives_alpha_over_alpha_plus_beta_in_every_layer():
    shares = fusion_shares(_network())
    assert [layer.stage for layer in shares] == [1, 2, 3, 4, 5]
    assert [layer.channels for layer in shares] == [16, 32, 64, 64, 64]
    assert shares[0].name == "NDDR 1"
    for layer in shares:
        assert layer.tasks == ("seg", "normals")
        _assert_shares(layer, _expected(2, 0.9, 0.1))


def test_three_tasks_split_beta_between_the_other_tasks():
    # divide_beta (default): beta / (K - 1) = 0.05 on each other block, rows sum to 0.9 + 0.1.
    for layer in fusion_shares(_network(THREE_TASKS)):
        _assert_shares(layer, _expected(3, 0.9, 0.05))
    # Without it every other block gets beta: shares 0.9 / 1.1 and 0.1 / 1.1.
    for layer in fusion_shares(_network(THREE_TASKS, divide_beta=False)):
        _assert_shares(layer, _expected(3, 0.9 / 1.1, 0.1 / 1.1))


def test_shares_are_normalised_block_frobenius_norms():
    network = _network(THREE_TASKS)
    layer = network.fusions[1]
    nn.init.normal_(layer.conv.weight)
    c = layer.channels
    shares = fusion_shares(network)[1]
    with torch.no_grad():
        for k in range(3):
            norms = torch.stack(
                [torch.linalg.norm(layer.task_weight(k)[:, j * c : (j + 1) * c]) for j in range(3)]
            )
            _assert_shares([shares.shares[k]], (norms / norms.sum())[None], rtol=1e-5, atol=0)
            assert sum(shares.shares[k]) == pytest.approx(1.0)


def test_a_zeroed_block_has_share_zero_and_a_zero_row_all_zero():
    network = _network()
    layer = network.fusions[2]
    c = layer.channels
    with torch.no_grad():
        layer.conv.weight.view(2, c, 2, c)[1, :, 0, :] = 0  # normals takes nothing from seg
    shares = fusion_shares(network)[2]
    assert shares.shares[1] == pytest.approx((0.0, 1.0))
    assert shares.shares[0] == pytest.approx((0.9, 0.1))
    with torch.no_grad():
        layer.conv.weight.view(2, c, 2, c)[1] = 0
    assert fusion_shares(network)[2].shares[1] == (0.0, 0.0)


def test_folding_batch_norm_scale():
    network = _network()
    layer = network.fusions[0]
    nn.init.normal_(layer.conv.weight)
    plain = fusion_shares(network)[0].shares
    with torch.no_grad():
        layer.bn.weight.fill_(3.0)
        layer.bn.running_var.fill_(4.0)
    # One scale for all of a task's output channels leaves the shares as they are.
    _assert_shares(fusion_shares(network, fold_bn=True)[0], plain, rtol=1e-6, atol=0)
    c = layer.channels
    with torch.no_grad():
        layer.bn.weight.uniform_(0.1, 2.0)
        scale = layer.bn.weight / torch.sqrt(layer.bn.running_var + layer.bn.eps)
        folded = (layer.conv.weight[:, :, 0, 0] * scale[:, None]).view(2, c, 2, c)
    norms = torch.linalg.vector_norm(folded, dim=(1, 3))
    folded_shares = fusion_shares(network, fold_bn=True)[0]
    _assert_shares(folded_shares, norms / norms.sum(dim=1, keepdim=True), rtol=1e-5, atol=0)
    assert folded_shares.shares != plain
    assert fusion_shares(network)[0].shares == plain


def test_a_wrapped_network_is_unwrapped():
    class Wrapper(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    shares = fusion_shares(Wrapper(_network()))
    assert len(shares) == 5


@pytest.mark.parametrize("variant", ["single", "multi"])
def test_networks_without_fusion_layers_are_refused(variant):
    with pytest.raises(NddrError, match=rf"'{variant}' network .* has no fusion layers"):
        fusion_shares(_network(variant=variant))


@pytest.mark.parametrize("per_channel", [True, False])
def test_cross_stitch_shares_are_norms_of_the_alphas(per_channel):
    network = _network(THREE_TASKS, "cross_stitch", per_channel=per_channel)
    shares = fusion_shares(network)
    assert [layer.name for layer in shares] == [f"Cross-stitch {s}" for s in range(1, 6)]
    _assert_shares(shares[0], _expected(3, 0.9, 0.05))
    layer = network.fusions[1]
    with torch.no_grad():
        if per_channel:  # task 1 <- task 0: alphas 3 and 4 on two channels: norm 5
            layer.weight[1].zero_()
            layer.weight[1, 0, :2] = torch.tensor([3.0, 4.0])
            layer.weight[1, 2, 0] = -5.0
            expected_row = [0.5, 0.0, 0.5]
        else:  # one alpha per task pair: shares |a_kj| / sum_j |a_kj|
            layer.weight[1] = torch.tensor([1.0, -2.0, 5.0])
            expected_row = [0.125, 0.25, 0.625]
    _assert_shares([fusion_shares(network)[1].shares[1]], [expected_row])


def test_sluice_shares_aggregate_alpha_over_each_tasks_subspaces():
    network = _network(TWO_TASKS, "sluice")  # M = 2 subspaces: alpha is 4 x 4
    shares = fusion_shares(network)
    assert shares[2].name == "Sluice 3" and shares[2].kind == "sluice"
    _assert_shares(shares[2], _expected(2, 0.9, 0.1))
    with torch.no_grad():  # rows 0-1: task 0's subspaces; columns 2-3: task 1's
        network.fusions[2].alpha.copy_(
            torch.tensor(
                [
                    [1.0, 0.0, 0.0, 2.0],
                    [0.0, 0.0, 2.0, 0.0],
                    [0.0, 0.0, 3.0, 4.0],
                    [0.0, 0.0, 0.0, 0.0],
                ]
            )
        )
    # task 0 <- task 0: ||[[1, 0], [0, 0]]|| = 1; <- task 1: ||[[0, 2], [2, 0]]|| = sqrt(8)
    own, other = 1.0, 8.0**0.5
    expected = [[own / (own + other), other / (own + other)], [0.0, 1.0]]
    _assert_shares(fusion_shares(network)[2], expected)


@pytest.mark.parametrize("variant", ["cross_stitch", "sluice"])
def test_fold_bn_is_refused_for_layers_without_batch_norm(variant):
    with pytest.raises(NddrError, match="have none: leave it off"):
        fusion_shares(_network(variant=variant), fold_bn=True)


def test_record_and_table_name_the_fusion_kind():
    shares = fusion_shares(_network(TWO_TASKS, "sluice"))
    assert shares_record(shares)["sluice2/seg<-normals"] == pytest.approx(0.1)
    table = format_shares(shares)
    assert "Sluice 5 (64 channels per task)" in table and "subspaces" in table
    assert shares[0].as_dict()["kind"] == "sluice"


def test_table_record_and_json():
    shares = fusion_shares(_network(THREE_TASKS))
    table = format_shares(shares)
    assert "NDDR 5 (64 channels per task)" in table
    rows = [line.split() for line in table.splitlines() if line.strip().startswith("normals <-")]
    assert len(rows) == 5 and rows[0] == ["normals", "<-", "5.0%", "90.0%", "5.0%"]

    record = shares_record(shares)
    tasks = THREE_TASKS
    assert set(record) == {
        f"nddr{stage}/{out}<-{source}" for stage in range(1, 6) for out in tasks for source in tasks
    }
    assert record["nddr3/normals<-seg"] == pytest.approx(0.05)
    assert record["nddr3/normals<-normals"] == pytest.approx(0.9)
    assert all(isinstance(value, float) for value in record.values())

    layers = json.loads(json.dumps([layer.as_dict() for layer in shares]))
    assert layers[0]["tasks"] == ["seg", "normals", "depth"]
    assert layers[0]["shares"][1][1] == pytest.approx(0.9)


def test_heatmap_png(tmp_path):
    network = _network(THREE_TASKS)
    c = network.fusions[0].channels
    with torch.no_grad():
        network.fusions[0].conv.weight.view(3, c, 3, c)[2] = 0
        network.fusions[0].conv.weight.view(3, c, 3, c)[2, :, 2, :] = torch.eye(c)  # 100%
    shares = fusion_shares(network)
    path = tmp_path / "out" / "shares.png"
    shares_heatmap(shares, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["shares.png"]  # no temporary left
    image = Image.open(path)
    assert image.format == "PNG" and image.mode == "RGB"
    assert image.width >= 5 * 3 * CELL and image.height >= 3 * CELL
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}
    for share in (0.9, 0.05, 1.0, 0.0):
        assert share_colour(share) in colours
    assert share_colour(0.0) == (255, 255, 255)

    narrower = tmp_path / "two.png"
    shares_heatmap(shares[:2], narrower)
    assert Image.open(narrower).width < image.width
    assert Image.open(narrower).height == image.height
