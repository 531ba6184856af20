"""Options the builder would otherwise drop or misread: each is one line naming what fits."""

import pytest

import nddr
from nddr.errors import NddrError
from nddr.heads import HeadSpec


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
