"""A small five-stage CNN shaped like DeepLab-LargeFOV VGG-16, for CPU tests and experiments."""

from __future__ import annotations

from torch import nn

from nddr.models.backbones.staged import StagedBackbone
from nddr.models.backbones.weights import load_backbone_file, load_module_state


def _conv_bn_relu(in_channels: int, out_channels: int, dilation: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def tiny(weights: object = None, width: int = 16) -> StagedBackbone:
    """Five stages with VGG-16-LFOV's layout at a fraction of its cost.

    Widths w/2w/4w/4w/4w (default w = 16), strides 2/4/8/8/8; stages 1-3 end in a 3x3 stride-2 max
    pool, stage 5 is dilated by 2. ``weights``: a state dict file of this module.
    """
    widths = (width, 2 * width, 4 * width, 4 * width, 4 * width)
    stages = []
    in_channels = 3
    for index, out_channels in enumerate(widths):
        layers = _conv_bn_relu(in_channels, out_channels, dilation=2 if index == 4 else 1)
        if index < 3:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        stages.append(nn.Sequential(*layers))
        in_channels = out_channels
    backbone = StagedBackbone(
        stages, widths, (2, 4, 8, 8, 8), name="tiny", dense_head="lfov", head_width=8 * width
    )
    if weights is not None:
        load_module_state(
            backbone,
            load_backbone_file(weights),
            f"weights {weights}",
            "the tiny backbone",
            "pass a state dict of this backbone (nddr.build_backbone('tiny').state_dict())",
        )
    return backbone
