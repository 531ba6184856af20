import pytest
import torch

import nddr
from nddr import parameter_groups


def _groups(network, **kwargs):
    groups = parameter_groups(network, base_lr=1e-3, **kwargs)
    return {group["name"]: group for group in groups}, groups


def _names(group):
    return set(group["param_names"])


@pytest.mark.parametrize("variant", list(nddr.VARIANTS))
@pytest.mark.parametrize("shortcut", [False, True])
def test_every_parameter_in_exactly_one_group(variant, shortcut):
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, variant, shortcut=shortcut)
    _, groups = _groups(network)
    names = [name for group in groups for name in group["param_names"]]
    assert sorted(names) == sorted(name for name, _ in network.named_parameters())
    assert all(len(g["params"]) == len(g["param_names"]) for g in groups)


def test_nddr_rules():
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr", shortcut=True)
    by_name, _ = _groups(network)
    fusion = by_name["fusion/decay"]
    assert fusion["lr"] == pytest.approx(0.1) and fusion["weight_decay"] == 5e-4
    assert {"fusions.0.conv.weight", "head_inputs.a.conv.weight"} <= _names(fusion)
    fusion_bn = by_name["fusion/no_decay"]
    assert fusion_bn["lr"] == pytest.approx(0.1) and fusion_bn["weight_decay"] == 0.0
    assert {"fusions.4.bn.weight", "fusions.4.bn.bias", "head_inputs.b.bn.bias"} <= _names(
        fusion_bn
    )
    assert _names(by_name["classifier/weight"]) == {"heads.a.fc8.weight", "heads.b.fc8.weight"}
    assert by_name["classifier/weight"]["lr"] == pytest.approx(1e-2)
    assert by_name["classifier/bias"]["lr"] == pytest.approx(2e-2)
    assert by_name["classifier/bias"]["weight_decay"] == 0.0
    base = by_name["base/decay"]
    assert "columns.0.stages.0.0.weight" in _names(base) and "heads.a.fc6.weight" in _names(base)
    assert base["lr"] == pytest.approx(1e-3)
    no_decay = _names(by_name["base/no_decay"])
    assert "columns.1.stages.0.1.weight" in no_decay and "heads.a.fc6.bias" in no_decay


@pytest.mark.parametrize(
    "variant, unit", [("cross_stitch", "fusions.2.weight"), ("sluice", "fusions.2.alpha")]
)
def test_fusion_units_have_no_weight_decay(variant, unit):
    by_name, _ = _groups(nddr.build_network("tiny", {"a": 2, "b": 3}, variant), fusion_lr_mult=10)
    assert unit in _names(by_name["fusion/no_decay"])
    assert by_name["fusion/no_decay"]["lr"] == pytest.approx(1e-2)


def test_aspp_branches_are_all_classifier_layers():
    network = nddr.build_network("tiny", [nddr.HeadSpec("a", 2, kind="aspp")], "nddr")
    by_name, _ = _groups(network)
    assert len(by_name["classifier/weight"]["params"]) == 4


def test_groups_drive_sgd():
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr")
    optimizer = torch.optim.SGD(parameter_groups(network, base_lr=1e-3), lr=1e-3, momentum=0.9)
    before = network.fusions[0].conv.weight.detach().clone()
    outputs = network(torch.rand(2, 3, 32, 32))
    sum(out.mean() for out in outputs.values()).backward()
    optimizer.step()
    assert not torch.equal(before, network.fusions[0].conv.weight)
