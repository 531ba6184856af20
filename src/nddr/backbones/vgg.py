"""DeepLab-LargeFOV VGG-16 with batch norm (paper §4, §5.1.1), cut from torchvision's vgg16_bn."""

from __future__ import annotations

import torch
from torch import nn

from nddr.backbones.staged import StagedBackbone
from nddr.backbones.weights import load_torchvision_weights

# End (exclusive) of each stage in torchvision's vgg16_bn.features: after pool1 .. pool5.
_STAGE_ENDS = (7, 14, 24, 34, 44)
_POOLS = (6, 13, 23, 33, 43)
_CONV5 = (34, 37, 40)


def vgg16_lfov(weights: object = None) -> StagedBackbone:
    """VGG-16 (with BN) as DeepLab-LargeFOV: output stride 8, stage ends pool1..pool5.

    Following DeepLab-LargeFOV and the released NDDR-CNN code: every max pool is 3x3 with padding
    1, pool1-3 have stride 2 and pool4-5 stride 1, the conv5 layers are dilated by 2, and a 3x3
    stride-1 average pool follows pool5. Widths 64/128/256/512/512, strides 2/4/8/8/8.

    Args:
        weights: torchvision ``vgg16_bn`` weights (a file or ``VGG16_BN_Weights.IMAGENET1K_V1``);
            the convolution shapes are torchvision's, so ImageNet weights load unchanged.
    """
    from torchvision.models import vgg16_bn
    from torchvision.models.vgg import cfgs, make_layers

    source = (
        nn.Module()
    )  # vgg16_bn's convolutional part only: its 124M-parameter classifier is unused
    source.features = make_layers(cfgs["D"], batch_norm=True)
    _init_like_torchvision(source.features)
    load_torchvision_weights(
        source, weights, example="VGG16_BN_Weights.IMAGENET1K_V1", skip_prefixes=("classifier.",)
    )
    with torch.device("meta"):
        source_parameters = sum(p.numel() for p in vgg16_bn().parameters())
    features = source.features
    for index in _POOLS:
        stride = 2 if index in _POOLS[:3] else 1
        features[index] = nn.MaxPool2d(kernel_size=3, stride=stride, padding=1)
    for index in _CONV5:
        features[index].dilation = (2, 2)
        features[index].padding = (2, 2)
    starts = (0, *_STAGE_ENDS[:-1])
    stages = [features[start:end] for start, end in zip(starts, _STAGE_ENDS)]
    stages[-1].append(nn.AvgPool2d(kernel_size=3, stride=1, padding=1, count_include_pad=False))
    return StagedBackbone(
        stages,
        channels=(64, 128, 256, 512, 512),
        strides=(2, 4, 8, 8, 8),
        name="vgg16_lfov",
        dense_head="lfov",
        head_width=1024,
        source_parameters=source_parameters,
    )


def _init_like_torchvision(features: nn.Sequential) -> None:
    """torchvision VGG's initialisation of its convolutional part."""
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
