import pytest
import torch

import nddr
from nddr import parameter_groups

PAPER = {
    "base_lr": 1e-3,
    "weight_decay": 5e-4,
    "fusion_lr_mult": 100.0,
    "classifier_lr_mult": 10.0,
    "classifier_bias_lr_mult": 20.0,
    "shortcut_lr_mult": None,
}


"""The paper's rates (§4.2, the released code): every one given, none taken by default."""


def _groups(network, **kwargs):
    groups = parameter_groups(network, **{**PAPER, **kwargs})
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
    assert "fusions.0.conv.weight" in _names(fusion)
    assert not any(name.startswith("head_inputs.") for name in _names(fusion))
    fusion_bn = by_name["fusion/no_decay"]
    assert fusion_bn["lr"] == pytest.approx(0.1) and fusion_bn["weight_decay"] == 0.0
    assert {"fusions.4.bn.weight", "fusions.4.bn.bias"} <= _names(fusion_bn)
    assert _names(by_name["classifier/weight"]) == {"heads.a.fc8.weight", "heads.b.fc8.weight"}
    assert by_name["classifier/weight"]["lr"] == pytest.approx(1e-2)
    assert by_name["classifier/bias"]["lr"] == pytest.approx(2e-2)
    assert by_name["classifier/bias"]["weight_decay"] == 0.0
    base = by_name["base/decay"]
    assert "columns.0.stages.0.0.weight" in _names(base) and "heads.a.fc6.weight" in _names(base)
    assert base["lr"] == pytest.approx(1e-3)
    no_decay = _names(by_name["base/no_decay"])
    assert {"columns.1.stages.0.1.weight", "heads.a.fc6.bias", "heads.a.bn6.weight"} <= no_decay


@pytest.mark.parametrize(
    "variant, weights",
    [
        ("nddr_grouped", {"conv"}),
        ("nddr_lowrank", {"diagonal", "down", "up"}),
    ],
)
def test_efficient_nddr_follows_nddrs_rules(variant, weights):
    """Every 1x1 weight decayed at the fusion rate, as NDDR's W^k; the batch norm not decayed."""
    by_name, _ = _groups(nddr.build_network("tiny", {"a": 2, "b": 3}, variant))
    decayed = {f"fusions.{stage}.{name}.weight" for stage in range(5) for name in weights}
    assert _names(by_name["fusion/decay"]) == decayed
    assert by_name["fusion/decay"]["lr"] == pytest.approx(0.1)
    assert by_name["fusion/decay"]["weight_decay"] == 5e-4
    bn = {f"fusions.{stage}.bn.{name}" for stage in range(5) for name in ("weight", "bias")}
    assert _names(by_name["fusion/no_decay"]) == bn
    assert by_name["fusion/no_decay"]["weight_decay"] == 0.0


def test_shortcuts_train_at_the_fusion_rate_unless_given_their_own():
    """NDDR-CNN-Shortcut's shortcuts train at the NDDR rate (released code: nddr_shortcut_*);
    ``shortcut_lr_mult=1`` is its baselines' base rate (``shortcuts``)."""
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr", shortcut=True)
    shortcut_weights = {"head_inputs.0.conv.weight", "head_inputs.1.conv.weight"}
    shortcut_bn = {f"head_inputs.{k}.bn.{p}" for k in (0, 1) for p in ("weight", "bias")}
    by_name, _ = _groups(network, fusion_lr_mult=100)
    assert _names(by_name["shortcut/decay"]) == shortcut_weights
    assert _names(by_name["shortcut/no_decay"]) == shortcut_bn
    assert by_name["shortcut/decay"]["lr"] == pytest.approx(0.1)
    assert by_name["shortcut/decay"]["weight_decay"] == 5e-4
    assert by_name["shortcut/no_decay"]["lr_mult"] == 100
    assert by_name["shortcut/no_decay"]["weight_decay"] == 0.0
    by_name, _ = _groups(network, fusion_lr_mult=100, shortcut_lr_mult=1)
    assert by_name["shortcut/decay"]["lr"] == pytest.approx(1e-3)
    assert by_name["shortcut/no_decay"]["lr_mult"] == 1
    assert by_name["fusion/decay"]["lr"] == pytest.approx(0.1)


def test_the_config_gives_the_multi_task_baselines_one_shortcut_at_its_own_rate():
    """Table 6's multi row: one shared shortcut, trained at optim.shortcut_lr_mult = 1."""
    from nddr.training.config import build_config
    from nddr.training.optimizer import optimizer_groups

    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "multi", shortcut=True)
    rates = ["optim.lr=1e-3", "optim.fusion_lr_mult=100", "optim.classifier_lr_mult=10"]
    optim = build_config({}, [*rates, "optim.shortcut_lr_mult=1"]).optim
    by_name = {group["name"]: group for group in optimizer_groups(network, optim)}
    assert _names(by_name["shortcut/decay"]) == {"head_inputs.0.conv.weight"}
    assert by_name["shortcut/decay"]["lr"] == pytest.approx(1e-3)
    assert by_name["classifier/weight"]["lr"] == pytest.approx(1e-2)
    default = {g["name"]: g for g in optimizer_groups(network, build_config({}, rates).optim)}
    assert default["shortcut/no_decay"]["lr"] == pytest.approx(0.1)


def test_sluice_layer_selection_stays_with_the_fusion_layers():
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "sluice")
    by_name, _ = _groups(network, shortcut_lr_mult=1)
    assert "head_inputs.0.beta" in _names(by_name["fusion/no_decay"])
    assert not any(name.startswith("shortcut/") for name in by_name)


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
    optimizer = torch.optim.SGD(parameter_groups(network, **PAPER), lr=1e-3, momentum=0.9)
    before = network.fusions[0].conv.weight.detach().clone()
    outputs = network(torch.rand(2, 3, 32, 32))
    sum(out.mean() for out in outputs.values()).backward()
    optimizer.step()
    assert not torch.equal(before, network.fusions[0].conv.weight)


def test_every_rate_is_given_by_keyword():
    """No rate is taken by position or by default: the config's ``optim`` owns the defaults."""
    network = nddr.build_network("tiny", {"a": 2}, "single")
    with pytest.raises(TypeError, match="positional"):
        parameter_groups(network, *PAPER.values())
    with pytest.raises(TypeError, match="weight_decay"):
        parameter_groups(network, base_lr=1e-3)


def test_the_config_path_passes_every_optim_rate():
    """training.optimizer.optimizer_groups gives parameter_groups the config's own values."""
    from nddr.training.config import build_config
    from nddr.training.optimizer import optimizer_groups

    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr", shortcut=True)
    optim = build_config({}).optim
    expected = parameter_groups(
        network,
        base_lr=optim.lr,
        weight_decay=optim.weight_decay,
        fusion_lr_mult=optim.fusion_lr_mult,
        classifier_lr_mult=optim.classifier_lr_mult,
        classifier_bias_lr_mult=optim.classifier_bias_lr_mult,
        shortcut_lr_mult=optim.shortcut_lr_mult,
    )
    strip = [{k: v for k, v in group.items() if k != "params"} for group in expected]
    got = [
        {k: v for k, v in group.items() if k != "params"}
        for group in optimizer_groups(network, optim)
    ]
    assert got == strip


def test_training_optimizer_is_fused_sgd_with_the_loops_values():
    """The fused kernel takes the place of the per-tensor loop: the same updates over every
    group's rate and decay, with momentum, up to rounding (the kernel fuses multiply-adds)."""
    from nddr.training.config import load_config
    from nddr.training.optimizer import has_fused_sgd, optimizer_groups, training_optimizer

    optim = load_config(None).optim
    torch.manual_seed(0)
    fused_network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr")
    loop_network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr")
    loop_network.load_state_dict(fused_network.state_dict())
    fused = training_optimizer(fused_network, optim)
    loop = torch.optim.SGD(
        optimizer_groups(loop_network, optim),
        lr=optim.lr,
        momentum=optim.momentum,
    )
    assert fused.defaults["fused"] and not loop.defaults["fused"]
    for _ in range(3):
        for network in (fused_network, loop_network):
            for parameter in network.parameters():
                parameter.grad = torch.sin(parameter.detach() * 7 + 1)
        fused.step()
        loop.step()
    for ours, theirs in zip(fused_network.parameters(), loop_network.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert not has_fused_sgd([torch.zeros(2, device="meta")])
