"""Options the builder would otherwise drop or misread: each is one line naming what fits."""

import pytest
import torch

import nddr
from nddr.errors import NddrError
from nddr.models.heads import HeadSpec


def test_head_options_for_a_head_the_network_does_not_use_are_refused():
    with pytest.raises(NddrError) as raised:
        nddr.build_network("tiny", {"a": 2}, "nddr", head_options={"aspp": {"dilations": [1]}})
    assert str(raised.value) == (
        "head_options for head 'aspp', which this network does not use (backbone 'tiny' with "
        "these tasks uses lfov): give options for a head it uses"
    )
    tasks = [HeadSpec("a", 2), HeadSpec("b", 3, dense=False)]
    options = {"classifier": {"dropout": 0.2}}
    network = nddr.build_network("tiny", tasks, "nddr", head_options=options)
    assert network.heads["b"].dropout.p == 0.2


def test_sluice_on_stages_it_cannot_split_names_the_stage_channels():
    with pytest.raises(NddrError) as raised:
        nddr.build_network("tiny", {"a": 2, "b": 2}, "sluice", backbone_options={"width": 7})
    assert str(raised.value) == (
        "variant 'sluice' does not fit backbone 'tiny', whose stages have 7, 14, 28, 28, 28 "
        "channels: Sluice splits a stage's channels into num_subspaces=2 equal subspaces: 7 "
        "channels do not divide by 2 (use a num_subspaces that divides every stage's channels, "
        "or other stage widths)"
    )
    assert "fusion option" not in str(raised.value)
    sluice = {"num_subspaces": 7}
    nddr.build_network(
        "tiny", {"a": 2}, "sluice", backbone_options={"width": 7}, fusion_options=sluice
    )


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("tiny", {"depth": 3}, "backbone 'tiny' has no option 'depth': it takes width"),
        ("vgg16_lfov", {"width": 8}, "backbone 'vgg16_lfov' has no option 'width': it takes none"),
        ("tiny", {"width": 2.5}, "'tiny' option width is a positive integer (default 16), got 2.5"),
        ("resnet50", {"output_stride": True}, "option output_stride is a positive integer"),
    ],
)
def test_backbone_options_it_does_not_take_are_refused(name, options, message):
    with pytest.raises(NddrError) as raised:
        nddr.build_backbone(name, **options)
    assert message in str(raised.value)


def test_fusion_options_on_a_variant_without_fusion():
    with pytest.raises(NddrError, match="variant 'multi' has no fusion layers, so fusion option"):
        nddr.build_network("tiny", {"a": 2, "b": 2}, "multi", fusion_options={"init": [1, 0]})
    nddr.build_network("tiny", {"a": 2, "b": 2}, "multi", fusion_options={"init": [0.9, 0.1]})


def _batch_norms(module: torch.nn.Module) -> list[torch.nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]


@pytest.mark.parametrize("backbone", ["tiny", "vgg16_lfov"])
def test_batch_norm_option_reaches_every_column_and_head_batch_norm(backbone):
    """model.bn_momentum / bn_eps set the columns' and heads' batch norms; the NDDR layers keep
    their fusion options and the shortcut its own (the released code's 0.05 / 1e-3)."""
    fusion = {"bn_momentum": 0.2, "bn_eps": 0.02}
    with torch.device("meta"):
        network = nddr.build_network(
            backbone,
            {"a": 2, "b": 3},
            "nddr",
            shortcut=True,
            fusion_options=fusion,
            bn_momentum=0.3,
            bn_eps=0.01,
        )
        default = nddr.build_network(backbone, {"a": 2, "b": 3}, "nddr")
    norms = _batch_norms(network.columns) + _batch_norms(network.heads)
    assert len(norms) == 2 * (13 if backbone == "vgg16_lfov" else 5) + 2 * 2
    assert {(norm.momentum, norm.eps) for norm in norms} == {(0.3, 0.01)}
    assert {(norm.momentum, norm.eps) for norm in _batch_norms(network.fusions)} == {(0.2, 0.02)}
    assert {(n.momentum, n.eps) for n in _batch_norms(network.head_inputs)} == {(0.05, 1e-3)}
    own = _batch_norms(default.columns) + _batch_norms(default.heads)
    assert {(norm.momentum, norm.eps) for norm in own} == {(0.1, 1e-5)}


def test_batch_norm_option_survives_grouped_execution_and_is_checked():
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr", bn_momentum=0.05, bn_eps=1e-3)
    network.set_execution("grouped")
    assert {(n.momentum, n.eps) for n in _batch_norms(network.columns)} == {(0.05, 1e-3)}
    with pytest.raises(NddrError) as raised:
        nddr.build_network("tiny", {"a": 2}, "nddr", bn_momentum=1.5)
    assert str(raised.value) == (
        "bad batch-norm setting (bn_momentum = 1.5: use a number in [0.0, 1.0], or null to keep "
        "the backbone's own)"
    )


def test_the_config_builds_its_batch_norm_settings_into_the_network():
    from nddr.tasks import TASKS
    from nddr.training.build import training_network
    from nddr.training.config import build_config

    config = build_config({}, ["model.bn_momentum=0.05", "model.bn_eps=1e-3"])
    tasks = [TASKS["segmentation"]("segmentation", 4), TASKS["normals"]("normals")]
    network = training_network(config, tasks, initialise=False)
    assert {(n.momentum, n.eps) for n in _batch_norms(network.columns)} == {(0.05, 1e-3)}
    assert network.config["bn_momentum"] == 0.05 and network.config["bn_eps"] == 1e-3
    with pytest.raises(NddrError, match=r"model.bn_eps = -1 is not valid \(bn_eps = -1.0: use"):
        build_config({}, ["model.bn_eps=-1"])
