"""Which parameters count as shared for each variant, and the features where the tasks part."""

import pytest
import torch

import nddr
from nddr.errors import NddrError
from nddr.training.balancing.shared import capture_inputs, shared_split

TASKS = {"a": 2, "b": 3}


def _names(network, parameters):
    ids = {id(p) for p in parameters}
    return {name for name, p in network.named_parameters() if id(p) in ids}


def test_the_multi_task_baseline_shares_its_trunk():
    network = nddr.build_network("tiny", TASKS, "multi", backbone_options={"width": 4})
    split = shared_split(network, "upgrad")
    assert _names(network, split.shared) == {
        name for name, _ in network.named_parameters() if not name.startswith("heads.")
    }
    for task in TASKS:
        assert _names(network, split.tasks[task]) == {
            name for name, _ in network.named_parameters() if name.startswith(f"heads.{task}.")
        }
    assert split.entries == [network.heads["a"], network.heads["b"]]


@pytest.mark.parametrize("variant", ["nddr", "cross_stitch", "sluice"])
@pytest.mark.parametrize("shortcut", [False, True])
def test_fused_variants_share_columns_and_fusion_layers(variant, shortcut):
    network = nddr.build_network(
        "tiny", TASKS, variant, shortcut=shortcut, backbone_options={"width": 4}
    )
    split = shared_split(network, "upgrad")
    shared = _names(network, split.shared)
    assert {name.split(".")[0] for name in shared} == {"columns", "fusions"}
    assert shared == {
        name for name, _ in network.named_parameters() if name.startswith(("columns", "fusions"))
    }
    own_b = _names(network, split.tasks["b"])
    assert own_b == {
        name
        for name, _ in network.named_parameters()
        if name.startswith(("heads.b.", "head_inputs.1."))
    }
    assert split.entries == list(network.head_inputs)


def test_the_single_task_baseline_shares_nothing():
    network = nddr.build_network("tiny", TASKS, "single", backbone_options={"width": 4})
    with pytest.raises(
        NddrError, match=r"optim.balancing=mgda .* the single-task baseline shares none"
    ):
        shared_split(network, "mgda")


def test_capture_inputs_records_each_feature_once_and_only_while_open():
    network = nddr.build_network("tiny", TASKS, "multi", backbone_options={"width": 4})
    images = torch.randn(2, 3, 32, 32)
    with capture_inputs(list(network.heads.values())) as captured:
        outputs = network(images)
    assert len(captured) == 1  # both heads read the one trunk output
    assert captured[0].shape[0] == 2 and captured[0].grad_fn is not None
    network(images)
    assert len(captured) == 1
    assert set(outputs) == set(TASKS)
