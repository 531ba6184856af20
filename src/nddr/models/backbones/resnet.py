"""Dilated ResNets as used by DeepLab (paper §5.1.2), cut from torchvision's ResNets."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from nddr.errors import NddrError
from nddr.models.backbones.staged import StagedBackbone
from nddr.models.backbones.weights import load_torchvision_weights

_DILATION = {8: [False, True, True], 16: [False, False, True], 32: [False, False, False]}
_STRIDES = {8: (4, 4, 8, 8, 8), 16: (4, 4, 8, 16, 16), 32: (4, 4, 8, 16, 32)}


def _dilated_resnet(
    builder: Callable[..., nn.Module], name: str, weights: object, output_stride: int, example: str
) -> StagedBackbone:
    if output_stride not in _DILATION:
        raise NddrError(f"{name}: output_stride must be 8, 16 or 32, got {output_stride}")
    source = builder(replace_stride_with_dilation=_DILATION[output_stride])
    load_torchvision_weights(source, weights, example=example)
    stem = nn.Sequential(source.conv1, source.bn1, source.relu, source.maxpool)
    return StagedBackbone(
        [stem, source.layer1, source.layer2, source.layer3, source.layer4],
        channels=(64, 256, 512, 1024, 2048),
        strides=_STRIDES[output_stride],
        name=name,
        dense_head="aspp",
        source_parameters=sum(p.numel() for p in source.parameters()),
    )


def resnet50(weights: object = None, output_stride: int = 8) -> StagedBackbone:
    """ResNet-50 with layer3/layer4 dilated to output stride 8 (default) or 16.

    Stages: stem (conv1, bn, relu, maxpool), layer1..layer4; widths 64/256/512/1024/2048.
    ``weights``: torchvision ``resnet50`` weights (a file or e.g. ``ResNet50_Weights.IMAGENET1K_V2``).
    """
    from torchvision.models import resnet50 as builder

    return _dilated_resnet(
        builder, "resnet50", weights, output_stride, "ResNet50_Weights.IMAGENET1K_V2"
    )


def resnet101(weights: object = None, output_stride: int = 8) -> StagedBackbone:
    """ResNet-101 (the paper's §5.1.2 backbone) dilated to output stride 8 (default) or 16.

    Stages: stem (conv1, bn, relu, maxpool), layer1..layer4, i.e. the paper's conv1, conv2_3,
    conv3_4, conv4_23 and conv5_3 outputs; widths 64/256/512/1024/2048.
    """
    from torchvision.models import resnet101 as builder

    return _dilated_resnet(
        builder, "resnet101", weights, output_stride, "ResNet101_Weights.IMAGENET1K_V2"
    )
