"""DeepLab-LargeFOV VGG-16 with batch norm (paper §4, §5.1.1), cut from torchvision's vgg16_bn."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from nddr.errors import NddrError
from nddr.models.backbones.staged import StagedBackbone
from nddr.models.backbones.weights import load_torchvision_weights

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
            the convolution shapes are torchvision's, so ImageNet weights load unchanged. Their
            classifier, when present, becomes the backbone's ``head_init``: fc6 and fc7 of the
            DeepLab-LargeFOV head decimated from it (:func:`decimate_fc_layers`).
    """
    from torchvision.models import vgg16_bn
    from torchvision.models.vgg import cfgs, make_layers

    # vgg16_bn's convolutional part only: its 124M-parameter classifier is not built.
    source = nn.Module()
    source.features = make_layers(cfgs["D"], batch_norm=True)
    _init_like_torchvision(source.features)
    classifier = load_torchvision_weights(
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
        head_init=decimate_fc_layers(classifier, str(weights)),
    )


# torchvision's VGG classifier layers that DeepLab-LargeFOV's fc6 and fc7 are decimated from.
_FC_SHAPES = {
    "classifier.0.weight": (4096, 512 * 7 * 7),
    "classifier.0.bias": (4096,),
    "classifier.3.weight": (4096, 4096),
    "classifier.3.bias": (4096,),
}


def decimate_fc_layers(classifier: Mapping[str, Tensor], source: str) -> dict[str, Tensor] | None:
    """DeepLab-LargeFOV's fc6 and fc7 from ImageNet VGG-16's fully connected fc6 and fc7.

    DeepLab-LargeFOV (Chen et al. 2015) made its 1024-wide fc6 (3x3, dilation 12) and fc7 by
    decimating VGG-16's 4096-wide ones; as in SSD's conversion of the same layers, this keeps every
    4th filter (0, 4, 8, ...), fc6's kernel rows and columns 0, 3 and 6 of 7 (the dilation makes up
    the field of view) and fc7's every 4th input channel: fc6 [1024, 512, 3, 3], fc7
    [1024, 1024, 1, 1], biases every 4th. ``classifier`` holds torchvision's ``classifier.*``
    entries; ``None`` when it has none of fc6 and fc7 (a file of the convolutional part only).
    """
    if not any(key in classifier for key in _FC_SHAPES):
        return None
    fix = "pass a whole vgg16_bn state dict, or one without its classifier"
    for key, shape in _FC_SHAPES.items():
        if key not in classifier:
            raise NddrError(f"weights {source}: its classifier has no {key}; {fix}")
        if tuple(classifier[key].shape) != shape:
            raise NddrError(
                f"weights {source}: {key} is {list(classifier[key].shape)}, not torchvision "
                f"VGG-16's {list(shape)}; {fix}"
            )
    fc6 = classifier["classifier.0.weight"].reshape(4096, 512, 7, 7)
    fc7 = classifier["classifier.3.weight"]
    return {
        "fc6.weight": fc6[::4, :, ::3, ::3].clone(),
        "fc6.bias": classifier["classifier.0.bias"][::4].clone(),
        "fc7.weight": fc7[::4, ::4].reshape(1024, 1024, 1, 1).clone(),
        "fc7.bias": classifier["classifier.3.bias"][::4].clone(),
    }


def _init_like_torchvision(features: nn.Sequential) -> None:
    """torchvision VGG's initialisation of its convolutional part."""
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
