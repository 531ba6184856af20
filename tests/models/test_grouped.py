import copy

import pytest
import torch
from torch import nn

from nddr import HeadSpec, build_network
from nddr.errors import NddrError
from nddr.models.backbones import StagedBackbone
from nddr.models.grouped import NotGroupable, group_columns, group_modules

TASKS = [HeadSpec("segmentation", 5), HeadSpec("normals", 3)]


def _pair(backbone="tiny", variant="nddr", shortcut=False, **options):
    torch.manual_seed(0)
    columns = build_network(backbone, TASKS, variant, shortcut=shortcut, **options)
    grouped = copy.deepcopy(columns).set_execution("grouped")
    return columns, grouped


def _run(network, image):
    torch.manual_seed(1)  # the heads' dropout draws the same masks in both
    outputs = network(image)
    sum(output.pow(2).mean() for output in outputs.values()).backward()
    return outputs


def _grad_by_column_key(network):
    """Gradients keyed as in the per-column state dict (grouped ones cut into column blocks)."""
    grads = {}
    for name, parameter in network.named_parameters():
        if network.execution == "grouped" and name.startswith("columns.stages."):
            for k, part in enumerate(parameter.grad.chunk(len(network.columns))):
                grads[f"columns.{k}.{name.split('.', 1)[1]}"] = part
        else:
            grads[name] = parameter.grad
    return grads


@pytest.mark.parametrize(
    "variant,shortcut",
    [
        ("nddr", False),
        ("nddr", True),
        ("cross_stitch", False),
        ("sluice", False),
        ("nddr_grouped", False),
        ("nddr_lowrank", False),
        ("single", False),
    ],
)
def test_grouped_columns_compute_the_same_outputs_and_gradients(variant, shortcut):
    columns, grouped = _pair("tiny", variant, shortcut, backbone_options={"width": 8})
    assert grouped.execution == "grouped" and columns.execution == "columns"
    image = torch.randn(3, 3, 40, 40)
    expected, actual = _run(columns, image), _run(grouped, image)
    for task in expected:
        torch.testing.assert_close(actual[task], expected[task], rtol=1e-5, atol=1e-5)
    expected_grads, actual_grads = _grad_by_column_key(columns), _grad_by_column_key(grouped)
    assert expected_grads.keys() == actual_grads.keys()
    for key, grad in expected_grads.items():
        scale = grad.abs().max().clamp(min=1e-3)
        assert (actual_grads[key] - grad).abs().max() <= 1e-4 * scale, key
    if variant == "sluice":
        torch.testing.assert_close(grouped.auxiliary_loss(), columns.auxiliary_loss())


def test_grouped_batch_norm_statistics_match_each_columns():
    columns, grouped = _pair()
    image = torch.randn(2, 3, 32, 32)
    _run(columns, image), _run(grouped, image)
    expected, actual = columns.state_dict(), grouped.state_dict()
    assert actual.keys() == expected.keys()
    running = [key for key in expected if key.startswith("columns.") and "running_mean" in key]
    assert running and not torch.equal(expected[running[0]], torch.zeros_like(expected[running[0]]))
    for key in running:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6)


def test_state_dicts_move_between_executions():
    columns, grouped = _pair()
    with torch.no_grad():
        for parameter in columns.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    grouped.load_state_dict(columns.state_dict())
    for key, value in columns.state_dict().items():
        assert torch.equal(grouped.state_dict()[key], value), key
    fresh = build_network("tiny", TASKS, "nddr")
    fresh.load_state_dict(grouped.state_dict())
    image = torch.randn(1, 3, 32, 32)
    columns.eval(), fresh.eval(), grouped.eval()
    with torch.no_grad():
        for task, output in columns(image).items():
            torch.testing.assert_close(grouped(image)[task], output)
            torch.testing.assert_close(fresh(image)[task], output)


@pytest.mark.parametrize("backbone", ["vgg16_lfov", "resnet50"])
def test_paper_backbones_group_exactly_in_evaluation(backbone):
    columns, grouped = _pair(backbone)
    columns.eval(), grouped.eval()
    image = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        expected, actual = columns(image), grouped(image)
    for task in expected:
        scale = expected[task].abs().max()
        assert (actual[task] - expected[task]).abs().max() <= 1e-4 * scale


class _ChannelMean(nn.Module):
    """Mixes channels without parameters: not separable per column."""

    def forward(self, x):
        return x - x.mean(dim=1, keepdim=True)


def _custom_backbone(*stage_extra):
    stages = [
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), *stage_extra),
        nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU()),
    ]
    return StagedBackbone.from_modules(stages, name="custom")


def test_a_stage_that_mixes_channels_is_refused_with_the_fix():
    network = build_network(_custom_backbone(_ChannelMean()), TASKS, "nddr")
    with pytest.raises(NddrError, match=r"'custom' cannot run as grouped columns.*stage 0"):
        network.set_execution("grouped")
    assert network.execution == "columns"


def test_a_layer_with_unstackable_parameters_is_refused():
    with pytest.raises(NotGroupable, match="LayerNorm"):
        group_modules([nn.Sequential(nn.LayerNorm(4)), nn.Sequential(nn.LayerNorm(4))])
    columns = [_custom_backbone(nn.Linear(64, 64)) for _ in range(2)]
    with pytest.raises(NddrError, match=r"model\.execution=columns"):
        group_columns(columns)


def test_columns_of_different_structure_are_refused():
    with pytest.raises(NotGroupable, match="differ"):
        group_modules([nn.Conv2d(3, 8, 3), nn.Conv2d(3, 8, 5)])


def test_multi_has_one_column_and_nothing_to_group():
    network = build_network("tiny", TASKS, "multi").set_execution("grouped")
    assert network.execution == "columns"


def test_execution_names_are_checked():
    network = build_network("tiny", TASKS, "nddr")
    with pytest.raises(NddrError, match="execution"):
        network.set_execution("fast")
