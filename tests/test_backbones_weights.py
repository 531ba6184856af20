"""Backbone weights files: an nddr network is refused, a mismatch is one line naming the keys."""

import pytest
import torch
from torch import nn

import nddr
from nddr import NddrError
from nddr.backbones.weights import load_backbone_file, load_torchvision_weights
from nddr.io import save_state_dict


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
