import json
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import nddr
from nddr import NddrError
from nddr.io import save_state_dict
from tests.helpers import randomise_batch_norm


def _single_task_checkpoint(tmp_path, backbone, task, size, shortcut=False, seed=0):
    torch.manual_seed(seed)
    network = nddr.build_network(backbone, {task: size}, "single", shortcut=shortcut)
    randomise_batch_norm(network)
    return network.eval(), nddr.save_network(network, tmp_path / f"{task}.safetensors")


@pytest.mark.parametrize(
    "backbone, shortcut", [("tiny", False), ("tiny", True), ("vgg16_lfov", False)]
)
def test_nddr_from_two_single_task_checkpoints_reproduces_them(tmp_path, backbone, shortcut):
    """Paper §4.3: an NDDR network with init (1, 0) started from single-task nets computes them."""
    seg, seg_path = _single_task_checkpoint(tmp_path, backbone, "segmentation", 6, shortcut, seed=1)
    normals, normals_path = _single_task_checkpoint(
        tmp_path, backbone, "normals", 3, shortcut, seed=2
    )
    fused = nddr.build_network(
        backbone,
        {"segmentation": 6, "normals": 3},
        "nddr",
        shortcut=shortcut,
        fusion_options={"init": (1.0, 0.0)},
    )
    nddr.init_from_single_task(fused, {"segmentation": seg_path, "normals": normals_path})
    fused.eval()
    images = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        outputs = fused(images)
        for task, single in [("segmentation", seg), ("normals", normals)]:
            expected = single(images)[task]
            scale = expected.abs().max()
            assert torch.allclose(outputs[task], expected, rtol=4e-3, atol=4e-3 * scale)
    assert not torch.equal(
        fused.columns[0].stages[0][0].weight, fused.columns[1].stages[0][0].weight
    )


def test_init_from_a_multi_column_single_network(tmp_path):
    source = nddr.build_network("tiny", {"a": 2, "b": 3}, "single")
    path = nddr.save_network(source, tmp_path / "both.safetensors")
    fused = nddr.build_network("tiny", {"b": 3, "a": 2}, "cross_stitch")
    nddr.init_from_single_task(fused, {"a": path, "b": path})
    assert torch.equal(fused.columns[0].stages[1][0].weight, source.columns[1].stages[1][0].weight)
    assert torch.equal(fused.heads["a"].fc8.weight, source.heads["a"].fc8.weight)


def test_mismatched_checkpoint_names_the_keys(tmp_path):
    _, path = _single_task_checkpoint(tmp_path, "alexnet", "segmentation", 6)
    fused = nddr.build_network("tiny", {"segmentation": 6, "normals": 3}, "nddr")
    with pytest.raises(
        NddrError, match=r"does not fit this network \(missing .*columns\.0\.stages"
    ):
        nddr.init_from_single_task(fused, {"segmentation": path})


def test_head_size_mismatch_is_named(tmp_path):
    _, path = _single_task_checkpoint(tmp_path, "tiny", "segmentation", 6)
    fused = nddr.build_network("tiny", {"segmentation": 40, "normals": 3}, "nddr")
    with pytest.raises(
        NddrError,
        match=r"shape mismatch .*heads\.segmentation\.fc8\.weight \[6, 128, 1, 1\] vs \[40",
    ):
        nddr.init_from_single_task(fused, {"segmentation": path})


def test_wrong_task_and_shared_column_are_refused(tmp_path):
    _, path = _single_task_checkpoint(tmp_path, "tiny", "segmentation", 6)
    fused = nddr.build_network("tiny", {"segmentation": 6, "normals": 3}, "nddr")
    with pytest.raises(NddrError, match="has no head for task 'normals'"):
        nddr.init_from_single_task(fused, {"normals": path})
    with pytest.raises(NddrError, match="no task 'depth'"):
        nddr.init_from_single_task(fused, {"depth": path})
    multi = nddr.build_network("tiny", {"segmentation": 6, "normals": 3}, "multi")
    with pytest.raises(NddrError, match="shares one column"):
        nddr.init_from_single_task(multi, {"segmentation": path})


def test_plain_state_dict_with_one_column_works(tmp_path):
    source = nddr.build_network("tiny", {"a": 2}, "single")
    path = tmp_path / "a.pth"
    torch.save(source.state_dict(), path)
    fused = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr")
    nddr.init_from_single_task(fused, {"a": path})
    assert torch.equal(fused.columns[0].stages[4][0].weight, source.columns[0].stages[4][0].weight)


def test_save_and_load_network_round_trip(tmp_path):
    network = nddr.build_network(
        "tiny",
        {"a": 2, "b": 3},
        "sluice",
        shortcut=True,
        backbone_options={"width": 8},
        fusion_options={"num_subspaces": 4},
    )
    randomise_batch_norm(network)
    path = nddr.save_network(network, tmp_path / "net.safetensors")
    loaded = nddr.load_network(path)
    assert loaded.config == network.config
    for (key, value), (other_key, other) in zip(
        network.state_dict().items(), loaded.state_dict().items()
    ):
        assert key == other_key and torch.equal(value, other)


def test_a_loaded_network_keeps_its_batch_norm_settings(tmp_path):
    """eval / predict rebuild the network from the file: its columns' and heads' batch norms must
    come back as trained (here the released code's 0.05 / 1e-3), not PyTorch's defaults."""
    network = nddr.build_network("tiny", {"a": 2}, "single", bn_momentum=0.05, bn_eps=1e-3)
    loaded = nddr.load_network(nddr.save_network(network, tmp_path / "net.safetensors"))
    assert loaded.config == network.config and loaded.config["bn_eps"] == 1e-3
    norms = [
        module
        for part in (loaded.columns, loaded.heads)
        for module in part.modules()
        if isinstance(module, torch.nn.BatchNorm2d)
    ]
    assert len(norms) == 7 and {(n.momentum, n.eps) for n in norms} == {(0.05, 1e-3)}


def test_load_network_errors(tmp_path):
    with pytest.raises(NddrError, match="not found"):
        nddr.load_network(tmp_path / "none.safetensors")
    bare = save_state_dict({"x": torch.zeros(1)}, tmp_path / "bare.safetensors")
    with pytest.raises(NddrError, match="no nddr build config"):
        nddr.load_network(bare)
    network = nddr.build_network("tiny", {"a": 2}, "nddr")
    with pytest.raises(NddrError, match="unexpected 1 keys: x"):
        nddr.load_weights(network, bare)


def _tiny_network() -> nddr.MultiTaskNetwork:
    torch.manual_seed(0)
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr", backbone_options={"width": 4})
    randomise_batch_norm(network)
    return network


def _edit_metadata(path, key, value: str) -> None:
    """Rewrite one metadata entry of a safetensors file as a hand edit would."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    save_file(tensors, str(path), metadata={**metadata, key: value})


@pytest.mark.parametrize("name", ["net.pt", "net.pth", "net.bin", "net"])
def test_save_network_loads_back_whatever_the_suffix(tmp_path, name):
    network = _tiny_network()
    loaded = nddr.load_network(nddr.save_network(network, tmp_path / name))
    assert loaded.config == network.config
    for key, value in network.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_torch_files_still_load_as_weights_whatever_the_suffix(tmp_path):
    network = _tiny_network()
    path = tmp_path / "weights.safetensors.bak"
    torch.save(network.state_dict(), path)
    other = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr", backbone_options={"width": 4})
    nddr.load_weights(other, path)
    assert torch.equal(
        other.state_dict()["heads.a.fc8.weight"], network.state_dict()["heads.a.fc8.weight"]
    )
    with pytest.raises(
        NddrError,
        match=r"not a readable safetensors file \(a torch file, not one written by nddr.save_network",
    ):
        nddr.load_network(path)


def test_load_network_of_a_folder(tmp_path):
    with pytest.raises(NddrError, match=r"folder .* holds no checkpoint .* or a network file"):
        nddr.load_network(tmp_path)
    network = _tiny_network()
    checkpoint = tmp_path / "run" / "checkpoints" / "step_00000005"
    nddr.save_network(network, checkpoint / "model.safetensors")
    for folder in (tmp_path / "run", checkpoint):
        loaded = nddr.load_network(folder)
        assert torch.equal(
            loaded.state_dict()["heads.b.fc8.bias"], network.state_dict()["heads.b.fc8.bias"]
        )


@pytest.mark.parametrize(
    "value, message",
    [
        ('{"backbone": "tiny", "tasks": [', "metadata 'nddr_network' is not valid JSON"),
        ('["tiny"]', "metadata 'nddr_network' is a list, not a mapping"),
        ('{"backbone": "tiny", "tasks": [], "colour": 1}', "has an unknown key 'colour'"),
        ('{"backbone": "tiny", "tasks": "a"}', "tasks = 'a' is not a list"),
        (
            '{"backbone": "tiny", "tasks": [{"name": "a"}]}',
            "tasks entry {'name': 'a'} is not a head spec",
        ),
        ('{"tasks": []}', "has no 'backbone'"),
        (
            '{"backbone": "tiny", "tasks": [], "bn_eps": "1e-3"}',
            "bn_eps = '1e-3' is not a float or null",
        ),
        (
            '{"backbone": "tiny", "tasks": [{"name": "a", "out_channels": 2}], "bn_momentum": 2.0}',
            "does not build a network (bad batch-norm setting (bn_momentum = 2.0: use a number",
        ),
        (
            '{"backbone": "tiny", "tasks": [{"name": "a", "out_channels": 2}], "variant": "ndr"}',
            "does not build a network (unknown variant 'ndr'",
        ),
    ],
)
def test_edited_network_metadata_is_one_line_naming_the_key(tmp_path, value, message):
    path = nddr.save_network(_tiny_network(), tmp_path / "net.safetensors")
    _edit_metadata(path, "nddr_network", value)
    with pytest.raises(NddrError, match=re.escape(message)) as error:
        nddr.load_network(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_flipped_byte_in_tensor_data_is_refused(tmp_path):
    path = nddr.save_network(_tiny_network(), tmp_path / "net.safetensors")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # inside the last tensor's bytes, past the header
    path.write_bytes(bytes(data))
    with pytest.raises(NddrError, match="is corrupt: its tensors do not match the checksum"):
        nddr.load_network(path)


@pytest.mark.parametrize("layout", ["heads_without_batch_norm", "head_inputs_by_task"])
def test_a_file_of_the_earlier_head_layout_says_so(tmp_path, layout):
    network = nddr.build_network("tiny", {"segmentation": 4, "normals": 3}, "nddr", shortcut=True)
    path = nddr.save_network(network, tmp_path / "net.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        state = {key: handle.get_tensor(key) for key in handle.keys()}
    if layout == "heads_without_batch_norm":
        state = {key: value for key, value in state.items() if not re.search(r"\.bn[67]\.", key)}
    else:
        state = {
            re.sub(r"^head_inputs\.0\.", "head_inputs.segmentation.", key): value
            for key, value in state.items()
        }
    metadata = {key: value for key, value in metadata.items() if key != "nddr_tensors_sha256"}
    save_state_dict(state, path, {key: json.loads(value) for key, value in metadata.items()})
    with pytest.raises(NddrError, match=r"earlier nddr .* train it again with this version"):
        nddr.load_network(path)


def test_the_network_layer_loads_files_only(tmp_path):
    """``load_network_file`` knows no run folders (those are the engine's): a folder is one line
    pointing to ``nddr.load_network``, which takes it."""
    from nddr.models import load_network_file

    network = _tiny_network()
    checkpoint = tmp_path / "run" / "checkpoints" / "step_00000005"
    model_file = nddr.save_network(network, checkpoint / "model.safetensors")
    with pytest.raises(NddrError, match=r"is a folder: .* nddr.load_network") as error:
        load_network_file(checkpoint)
    assert "\n" not in str(error.value)
    for loaded in (load_network_file(model_file), nddr.load_network(tmp_path / "run")):
        assert loaded.state_dict().keys() == network.state_dict().keys()
