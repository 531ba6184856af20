import math

import pytest
import torch

import nddr
from nddr import NddrError, StagedBackbone
from nddr.io import save_state_dict
from tests.helpers import BACKBONE_NAMES, make_backbone


@pytest.mark.parametrize("name", BACKBONE_NAMES)
def test_reported_widths_and_strides_match_the_stage_outputs(name):
    backbone = make_backbone(name).eval()
    with torch.no_grad():
        outputs = backbone(torch.rand(1, 3, 96, 96))
    assert len(outputs) == backbone.num_stages
    assert [o.shape[1] for o in outputs] == list(backbone.channels)
    measured = [96 / o.shape[-1] for o in outputs]
    if name == "alexnet":  # unpadded convs and pools: its strides are nominal
        assert all(s <= m <= 1.5 * s for m, s in zip(measured, backbone.strides))
    else:
        assert [math.ceil(m) for m in measured] == list(backbone.strides)


@pytest.mark.parametrize("size", [64, 65, 161])
def test_vgg16_lfov_output_stride_is_exactly_8(size):
    backbone = make_backbone("vgg16_lfov").eval()
    assert backbone.channels == (64, 128, 256, 512, 512)
    assert backbone.strides == (2, 4, 8, 8, 8)
    with torch.no_grad():
        outputs = backbone(torch.rand(1, 3, size, size))
    assert outputs[-1].shape[-1] == math.ceil(size / 8)
    assert outputs[2].shape == (1, 256, *outputs[4].shape[2:])


@pytest.mark.parametrize("name", ["resnet50", "resnet101"])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilated_resnets(name, output_stride):
    backbone = nddr.build_backbone(name, output_stride=output_stride).eval()
    assert backbone.channels == (64, 256, 512, 1024, 2048)
    assert backbone.output_stride == output_stride
    with torch.no_grad():
        last = backbone(torch.rand(1, 3, 64, 64))[-1]
    assert last.shape[-2:] == (64 // output_stride, 64 // output_stride)


def test_resnet_rejects_unknown_output_stride():
    with pytest.raises(NddrError, match="output_stride"):
        nddr.build_backbone("resnet50", output_stride=4)


def test_alexnet_stage_ends_at_pool1_pool2_pool5():
    backbone = make_backbone("alexnet")
    assert backbone.channels == (64, 192, 256)
    assert [type(stage[-1]).__name__ for stage in backbone.stages] == ["MaxPool2d"] * 3


def test_unknown_backbone_suggests_the_closest_name():
    with pytest.raises(NddrError, match="did you mean 'vgg16_lfov'"):
        nddr.build_backbone("vgg16_lfv")


def test_vgg16_lfov_loads_torchvision_weights_from_a_file(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=True)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(
        1000
    )  # a full torchvision file also has the classifier
    path = tmp_path / "vgg16_bn.pth"
    torch.save(state, path)
    backbone = nddr.build_backbone("vgg16_lfov", weights=str(path))
    assert torch.equal(backbone.stages[0][0].weight, features[0].weight)
    assert torch.equal(backbone.stages[4][0].weight, features[34].weight)
    assert torch.equal(backbone.stages[4][1].running_var, features[35].running_var)


def test_resnet_loads_torchvision_weights_from_safetensors(tmp_path):
    from torchvision.models import resnet50

    source = resnet50()
    path = save_state_dict(source.state_dict(), tmp_path / "resnet50.safetensors")
    backbone = nddr.build_backbone("resnet50", weights=path)
    assert torch.equal(backbone.stages[0][0].weight, source.conv1.weight)
    assert torch.equal(backbone.stages[4][2].conv3.weight, source.layer4[2].conv3.weight)


def test_weights_that_do_not_fit_name_the_keys(tmp_path):
    path = save_state_dict({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.safetensors")
    with pytest.raises(NddrError, match=r"features\.0\.weight"):
        nddr.build_backbone("vgg16_lfov", weights=path)
    with pytest.raises(NddrError, match="missing"):
        nddr.build_backbone(
            "alexnet",
            weights=save_state_dict({"x": torch.zeros(1)}, tmp_path / "other.safetensors"),
        )


def test_unknown_weights_name_is_a_clear_error():
    with pytest.raises(NddrError, match=r"VGG16_BN_Weights\.IMAGENET1K_V1"):
        nddr.build_backbone("vgg16_lfov", weights="VGG16_BN_Weights.NOPE")
    with pytest.raises(NddrError, match="not found"):
        nddr.build_backbone("vgg16_lfov", weights="/no/such/file.pth")


def test_timm_backbone_stage_ends_and_local_weights(tmp_path):
    import timm

    source = timm.create_model("resnet18")
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    backbone = nddr.build_backbone("timm:resnet18", weights=str(path))
    assert backbone.channels == (64, 64, 128, 256, 512)
    assert backbone.strides == (2, 4, 8, 16, 32)
    assert torch.equal(backbone.stages[0][0].weight, source.conv1.weight)


def test_timm_output_stride_option():
    backbone = nddr.build_backbone("timm:resnet18", output_stride=8)
    assert backbone.strides[-1] == 8


def test_unknown_timm_model():
    with pytest.raises(NddrError, match="timm has no model"):
        nddr.build_backbone("timm:not_a_model")


def test_from_modules_reads_widths_and_strides_and_keeps_mode():
    from torch import nn

    stages = [nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.BatchNorm2d(4)), nn.Conv2d(4, 7, 3, 4, 1)]
    backbone = StagedBackbone.from_modules(stages)
    assert backbone.channels == (4, 7) and backbone.strides == (2, 8)
    assert backbone.training
    with pytest.raises(ValueError, match="one entry per stage"):
        StagedBackbone(stages, channels=[4], strides=[2, 8])


def test_tiny_width_option_and_weights(tmp_path):
    backbone = nddr.build_backbone("tiny", width=8)
    assert backbone.channels == (8, 16, 32, 32, 32)
    path = save_state_dict(backbone.state_dict(), tmp_path / "tiny.safetensors")
    loaded = nddr.build_backbone("tiny", weights=path, width=8)
    assert torch.equal(loaded.stages[3][0].weight, backbone.stages[3][0].weight)
