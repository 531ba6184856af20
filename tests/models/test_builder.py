import copy
import math

import pytest
import torch

import nddr
from nddr import HeadSpec, NddrError
from nddr.models.fusion import NDDR, CrossStitch, LastStage, LayerSelection, Shortcut, Sluice
from tests.helpers import BACKBONE_NAMES, make_backbone, randomise_batch_norm

TASKS = [HeadSpec("segmentation", 5), HeadSpec("normals", 3), HeadSpec("depth", 1)]


SIZE = 64


@pytest.mark.parametrize("num_tasks", [1, 2, 3])
@pytest.mark.parametrize("shortcut", [False, True], ids=["plain", "shortcut"])
@pytest.mark.parametrize("variant", list(nddr.VARIANTS))
@pytest.mark.parametrize("backbone_name", BACKBONE_NAMES)
def test_every_backbone_variant_and_task_count_trains(backbone_name, variant, shortcut, num_tasks):
    backbone = make_backbone(backbone_name)
    tasks = TASKS[:num_tasks]
    network = nddr.build_network(backbone, tasks, variant, shortcut=shortcut)
    images = torch.rand(2, 3, SIZE, SIZE)
    outputs = network(images)

    size = math.ceil(SIZE / backbone.output_stride) if backbone_name != "alexnet" else 1
    assert list(outputs) == [task.name for task in tasks]
    for task in tasks:
        assert outputs[task.name].shape == (2, task.out_channels, size, size)
        assert torch.isfinite(outputs[task.name]).all()
    loss = sum(out.square().mean() for out in outputs.values())
    if (auxiliary := network.auxiliary_loss()) is not None:
        loss = loss + auxiliary
    loss.backward()
    for name, parameter in network.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.parametrize("backbone_name", ["tiny", "vgg16_lfov"])
def test_image_level_tasks_get_classifiers(backbone_name):
    tasks = [HeadSpec("age", 100, dense=False), HeadSpec("gender", 2, dense=False)]
    network = nddr.build_network(make_backbone(backbone_name), tasks, "nddr")
    outputs = network(torch.rand(2, 3, SIZE, SIZE))
    assert outputs["age"].shape == (2, 100) and outputs["gender"].shape == (2, 2)


def test_variant_structure():
    tasks = {"a": 2, "b": 3}
    single = nddr.build_network("tiny", tasks, "single")
    assert len(single.columns) == 2 and len(single.fusions) == 0
    multi = nddr.build_network("tiny", tasks, "multi")
    assert len(multi.columns) == 1 and multi.column_index("b") == 0
    for variant, kind in [("nddr", NDDR), ("cross_stitch", CrossStitch), ("sluice", Sluice)]:
        network = nddr.build_network("tiny", tasks, variant)
        assert len(network.columns) == 2 and len(network.fusions) == 5
        assert all(isinstance(fusion, kind) for fusion in network.fusions)
        assert [f.channels for f in network.fusions] == list(network.columns[0].channels)
    assert isinstance(nddr.build_network("tiny", tasks, "sluice").head_input("a"), LayerSelection)
    assert isinstance(nddr.build_network("tiny", tasks, "nddr").head_input("a"), LastStage)
    assert isinstance(
        nddr.build_network("tiny", tasks, "sluice", shortcut=True).head_input("a"), Shortcut
    )


@pytest.mark.parametrize("variant", ["single", "multi", "nddr"])
def test_one_head_input_per_column_so_multi_shares_its_shortcut(variant):
    """The released multi-task baseline with shortcut has one shortcut conv in its shared trunk."""
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, variant, shortcut=True)
    shortcuts = network.shortcut_modules()
    assert len(shortcuts) == len(network.head_inputs) == len(network.columns)
    assert (network.head_input("a") is network.head_input("b")) == (variant == "multi")
    one = sum(p.numel() for p in shortcuts[0].parameters())
    assert network.parameter_summary()["head_inputs"] == one * len(network.columns)
    assert {key for key in network.state_dict() if key.startswith("head_inputs.")} == {
        f"head_inputs.{k}.{entry}"
        for k in range(len(network.columns))
        for entry in shortcuts[0].state_dict()
    }
    calls = []
    shortcuts[0].register_forward_hook(lambda *_: calls.append(1))
    outputs = network(torch.rand(2, 3, 32, 32))
    assert set(outputs) == {"a", "b"} and len(calls) == 1


def test_columns_start_from_the_same_weights_but_are_independent():
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr")
    first, second = (column.stages[0][0].weight for column in network.columns)
    assert torch.equal(first, second) and first.data_ptr() != second.data_ptr()


def test_vgg_shortcut_reduces_1472_channels_to_512():
    network = nddr.build_network(make_backbone("vgg16_lfov"), {"a": 2}, "nddr", shortcut=True)
    assert network.head_input("a").conv.in_channels == 1472
    assert network.head_input("a").conv.out_channels == 512


@pytest.mark.parametrize("variant", ["nddr", "nddr_grouped", "nddr_lowrank"])
@pytest.mark.parametrize("backbone_name", ["tiny", "vgg16_lfov", "resnet50"])
@pytest.mark.parametrize("shortcut", [False, True], ids=["plain", "shortcut"])
def test_nddr_with_identity_init_reproduces_the_single_task_columns(
    backbone_name, shortcut, variant
):
    """NDDR init (1, 0) with fresh BN statistics, in eval mode, is the K single-task columns;
    so are grouped and low-rank NDDR's, whose diagonal init is the same.

    Fresh BN divides by sqrt(1 + eps) at each of the S stage ends, so outputs agree to within that
    factor; with eps = 0 they agree to float precision.
    """
    tasks = {"a": 4, "b": 3}
    single = nddr.build_network(make_backbone(backbone_name), tasks, "single", shortcut=shortcut)
    with torch.no_grad():
        randomise_batch_norm(single)
    single.eval()
    images = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        expected = single(images)
    for eps, rtol in [(1e-3, 4e-3), (0.0, 1e-5)]:
        options = {"init": (1.0, 0.0), "bn_eps": eps}
        fused = nddr.build_network(
            copy.deepcopy(single.columns[0]),
            tasks,
            variant,
            shortcut=shortcut,
            fusion_options=options,
        )
        missing, unexpected = fused.load_state_dict(single.state_dict(), strict=False)
        assert unexpected == [] and all(key.startswith("fusions.") for key in missing)
        fused.eval()
        with torch.no_grad():
            actual = fused(images)
        for task in tasks:
            scale = expected[task].abs().max()
            assert torch.allclose(actual[task], expected[task], rtol=rtol, atol=rtol * scale), (
                task,
                eps,
            )


def test_sluice_auxiliary_loss_sums_the_orthogonality_penalties():
    network = nddr.build_network("tiny", {"a": 2, "b": 2}, "sluice")
    network(torch.rand(2, 3, 32, 32))
    expected = sum(fusion.orthogonality_penalty for fusion in network.fusions)
    assert torch.allclose(network.auxiliary_loss(), expected)
    assert nddr.build_network("tiny", {"a": 2}, "nddr").auxiliary_loss() is None


def test_builder_errors_are_clear():
    with pytest.raises(NddrError, match="did you mean 'nddr'"):
        nddr.build_network("tiny", {"a": 2}, "ndr")
    with pytest.raises(NddrError, match="no tasks"):
        nddr.build_network("tiny", {}, "nddr")
    with pytest.raises(NddrError, match="repeat"):
        nddr.build_network("tiny", [HeadSpec("a", 2), HeadSpec("a", 3)], "nddr")
    with pytest.raises(NddrError, match="not usable"):
        nddr.build_network("tiny", {"a.b": 2}, "nddr")
    with pytest.raises(NddrError, match="bad fusion option"):
        nddr.build_network("tiny", {"a": 2}, "cross_stitch", fusion_options={"activation": False})
    with pytest.raises(NddrError, match="bad head option"):
        nddr.build_network("tiny", {"a": 2}, "nddr", head_options={"lfov": {"depth": 3}})


def test_network_rejects_non_image_input():
    network = nddr.build_network("tiny", {"a": 2}, "nddr")
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        network(torch.rand(3, 32, 32))


def test_head_options_and_nddr_options_reach_their_modules():
    network = nddr.build_network(
        "tiny",
        {"a": 2, "b": 2},
        "nddr",
        fusion_options={"init": "xavier"},
        head_options={"lfov": {"width": 24, "dilation": 2}},
    )
    assert network.heads["a"].fc6.out_channels == 24 and network.heads["a"].fc6.dilation == (2, 2)
    assert network.fusions[0].init == "xavier"
