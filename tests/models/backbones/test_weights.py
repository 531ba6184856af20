"""Backbone weights files: an nddr network is refused, a mismatch is one line naming the keys;
VGG-16's ImageNet classifier starts the DeepLab-LargeFOV heads (decimated fc6 / fc7)."""

import math

import pytest
import torch
from torch import nn

import nddr
from nddr import NddrError
from nddr.io import save_state_dict
from nddr.models.backbones.vgg import decimate_fc_layers
from nddr.models.backbones.weights import load_backbone_file, load_torchvision_weights


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_an_nddr_network_file_points_to_init_from(tmp_path):
    network = nddr.build_network("tiny", {"a": 2}, "single", backbone_options={"width": 4})
    path = nddr.save_network(network, tmp_path / "single_a.safetensors")
    with pytest.raises(NddrError) as error:
        nddr.build_backbone("alexnet", weights=str(path))
    message = _one_line(error)
    assert "are an nddr network (keys columns.*, heads.*), not a backbone" in message
    assert "set model.init_from" in message and str(path) in message
    with pytest.raises(NddrError, match=r"set model.init_from"):
        load_backbone_file(path)


def test_missing_unexpected_and_misshaped_keys_are_counted_in_one_line(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 1))
    state = {f"0.{key}": value for key, value in model[0].state_dict().items()}
    state["0.weight"] = torch.zeros(5, 3, 3, 3)
    state.update({f"extra.{index}": torch.zeros(1) for index in range(300)})
    path = save_state_dict(state, tmp_path / "w.safetensors")
    with pytest.raises(NddrError) as error:
        load_torchvision_weights(model, str(path), example="Some_Weights.IMAGENET1K_V1")
    message = _one_line(error)
    assert "missing 2 keys: 1.bias, 1.weight" in message
    assert "unexpected 300 keys: extra.0, extra.1, extra.10, ..." in message
    assert "shape mismatch 1 keys: 0.weight [5, 3, 3, 3] vs [4, 3, 3, 3]" in message
    assert "e.g. Some_Weights.IMAGENET1K_V1" in message


def test_fitting_weights_load(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    source = nn.Sequential(nn.Conv2d(3, 4, 3))
    path = save_state_dict(source.state_dict(), tmp_path / "w.pt")
    load_torchvision_weights(model, str(path), example="X")
    assert torch.equal(model[0].weight, source[0].weight)


def test_the_tiny_backbone_refuses_a_network_file_and_names_mismatched_keys(tmp_path):
    network = nddr.build_network("tiny", {"a": 2}, "single", backbone_options={"width": 4})
    path = nddr.save_network(network, tmp_path / "single_a.safetensors")
    with pytest.raises(NddrError, match=r"set model.init_from"):
        nddr.build_backbone("tiny", weights=str(path))
    other = save_state_dict(nddr.build_backbone("tiny", width=8).state_dict(), tmp_path / "w8.pt")
    with pytest.raises(NddrError) as error:
        nddr.build_backbone("tiny", weights=str(other), width=4)
    message = _one_line(error)
    assert "do not fit the tiny backbone" in message and "shape mismatch" in message
    fitting = save_state_dict(nddr.build_backbone("tiny", width=4).state_dict(), tmp_path / "w4.pt")
    nddr.build_backbone("tiny", weights=str(fitting), width=4)


def _distinct(*shape: int, start: int) -> torch.Tensor:
    """A float tensor whose every entry is a different bit pattern: ``start`` + its flat index."""
    count = math.prod(shape)
    return torch.arange(start, start + count, dtype=torch.int32).view(torch.float32).view(shape)


def _index(tensor: torch.Tensor, start: int) -> torch.Tensor:
    """Each entry's flat index in the tensor made by :func:`_distinct` with ``start``."""
    return tensor.contiguous().view(torch.int32).long() - start


def test_decimation_keeps_every_4th_filter_and_kernel_taps_0_3_6():
    classifier = {
        "classifier.0.weight": _distinct(4096, 25088, start=2**30),
        "classifier.0.bias": _distinct(4096, start=2**29),
        "classifier.3.weight": _distinct(4096, 4096, start=2**28),
        "classifier.3.bias": _distinct(4096, start=2**27),
    }
    head = decimate_fc_layers(classifier, "synthetic")
    out = torch.arange(1024)
    o, c = out.view(-1, 1, 1, 1), torch.arange(512).view(1, -1, 1, 1)
    h, w = torch.arange(3).view(1, 1, -1, 1), torch.arange(3).view(1, 1, 1, -1)
    # classifier.0.weight viewed as [4096, 512, 7, 7]: filter 4o, channel c, row 3h, column 3w.
    expected_fc6 = 4 * o * 25088 + c * 49 + 3 * h * 7 + 3 * w
    assert head["fc6.weight"].shape == (1024, 512, 3, 3)
    assert torch.equal(_index(head["fc6.weight"], 2**30), expected_fc6)
    assert torch.equal(_index(head["fc6.bias"], 2**29), 4 * out)
    assert head["fc7.weight"].shape == (1024, 1024, 1, 1)
    expected_fc7 = (4 * out[:, None] * 4096 + 4 * out[None, :]).view(1024, 1024, 1, 1)
    assert torch.equal(_index(head["fc7.weight"], 2**28), expected_fc7)
    assert torch.equal(_index(head["fc7.bias"], 2**27), 4 * out)
    assert decimate_fc_layers({"classifier.6.bias": torch.zeros(1000)}, "x") is None


def test_decimation_refuses_a_partial_or_misshaped_classifier():
    with pytest.raises(NddrError) as error:
        decimate_fc_layers({"classifier.0.weight": torch.zeros(4096, 25088)}, "w.pth")
    message = _one_line(error)
    assert "weights w.pth: its classifier has no classifier.0.bias" in message
    assert "pass a whole vgg16_bn state dict" in message


def test_vgg16_lfov_takes_its_head_init_from_the_weights_classifier(tmp_path, monkeypatch):
    from torchvision.models.vgg import cfgs, make_layers

    from nddr.models.backbones import vgg

    state = {f"features.{k}": v for k, v in make_layers(cfgs["D"], True).state_dict().items()}
    path = save_state_dict(state, tmp_path / "features.safetensors")
    assert nddr.build_backbone("vgg16_lfov", weights=path).head_init is None
    assert nddr.build_backbone("vgg16_lfov").head_init is None
    with monkeypatch.context() as patch:
        patch.setattr(
            vgg, "decimate_fc_layers", lambda fc, source: {"fc6.bias": fc["classifier.x"]}
        )
        marked = save_state_dict({**state, "classifier.x": torch.arange(5.0)}, tmp_path / "x.pth")
        head_init = nddr.build_backbone("vgg16_lfov", weights=marked).head_init
        assert torch.equal(head_init["fc6.bias"], torch.arange(5.0))
    state["classifier.0.weight"] = torch.zeros(10, 10)
    bad = save_state_dict(state, tmp_path / "bad.safetensors")
    with pytest.raises(
        NddrError, match=r"classifier\.0\.weight is \[10, 10\], not .* \[4096, 25088\]"
    ):
        nddr.build_backbone("vgg16_lfov", weights=bad)


def test_vgg16_without_batch_norm_is_refused_as_before(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    state = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    path = save_state_dict(state, tmp_path / "vgg16.safetensors")
    with pytest.raises(NddrError) as error:
        nddr.build_backbone("vgg16_lfov", weights=path)
    assert "do not fit torchvision's Module" in _one_line(error)
    assert "VGG16_BN_Weights.IMAGENET1K_V1" in str(error.value)


def _tiny_with_head_init(width: int = 4) -> tuple[nddr.StagedBackbone, dict[str, torch.Tensor]]:
    backbone = nddr.build_backbone("tiny", width=width)
    hidden, last = backbone.head_width, backbone.channels[-1]
    head_init = {
        "fc6.weight": torch.randn(hidden, last, 3, 3),
        "fc6.bias": torch.randn(hidden),
        "fc7.weight": torch.randn(hidden, hidden, 1, 1),
        "fc7.bias": torch.randn(hidden),
    }
    backbone.head_init = head_init
    return backbone, head_init


@pytest.mark.parametrize("variant, shortcut", [("nddr", False), ("multi", True)])
def test_every_dense_head_starts_from_the_backbone_head_init(variant, shortcut):
    backbone, head_init = _tiny_with_head_init()
    tasks = [nddr.HeadSpec("a", 2), nddr.HeadSpec("b", 3), nddr.HeadSpec("c", 4, dense=False)]
    network = nddr.build_network(backbone, tasks, variant, shortcut=shortcut)
    for task in ("a", "b"):
        head = network.state_dict()
        for key, value in head_init.items():
            assert torch.equal(head[f"heads.{task}.{key}"], value), (task, key)
    assert network.heads["a"].fc6.weight.data_ptr() != network.heads["b"].fc6.weight.data_ptr()
    assert all(column.head_init is None for column in network.columns)


def test_a_head_of_another_shape_keeps_its_random_init():
    backbone, head_init = _tiny_with_head_init()
    network = nddr.build_network(backbone, {"a": 2}, "nddr", head_options={"lfov": {"width": 8}})
    assert network.heads["a"].fc6.weight.shape != head_init["fc6.weight"].shape
    assert network.heads["a"].fc7.weight.abs().max() <= 1 / math.sqrt(8)


def test_without_weights_the_heads_start_random_and_apart():
    network = nddr.build_network("tiny", {"a": 2, "b": 3}, "nddr")
    first, second = network.heads["a"].fc6, network.heads["b"].fc6
    assert not torch.equal(first.weight, second.weight)
    bound = 1 / math.sqrt(first.in_channels * 9)  # PyTorch's default conv init
    assert 0.9 * bound < first.weight.abs().max() <= bound
