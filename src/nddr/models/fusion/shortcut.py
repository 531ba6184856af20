"""How a task's head sees the stage outputs: the last one, or all of them (NDDR-CNN-Shortcut)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LastStage(nn.Module):
    """The plain path: the head reads the last stage's output."""

    def forward(self, stage_outputs: Sequence[Tensor]) -> Tensor:
        return stage_outputs[-1]


class Shortcut(nn.Module):
    """NDDR-CNN-Shortcut's head input (paper §3.3, Fig. 2).

    Every stage's (fused) output is resized bilinearly to the last stage's size, the results are
    concatenated on channels (VGG-16: 64+128+256+512+512 = 1472) and reduced by a 1x1 convolution
    to ``out_channels`` (default: the last stage's width, 512 for VGG-16), then batch norm and ReLU,
    as in the released code. Gradients reach every stage's fusion directly through this path.
    A network has one per column: the multi-task baseline's one sits in its shared trunk, as in
    the released code. :func:`nddr.parameter_groups` trains it at ``shortcut_lr_mult``.
    """

    def __init__(
        self,
        stage_channels: Sequence[int],
        out_channels: int | None = None,
        bn_momentum: float = 0.05,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.stage_channels = tuple(stage_channels)
        self.out_channels = out_channels or self.stage_channels[-1]
        self.conv = nn.Conv2d(
            sum(self.stage_channels), self.out_channels, kernel_size=1, bias=False
        )
        self.bn = nn.BatchNorm2d(self.out_channels, eps=bn_eps, momentum=bn_momentum)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, stage_outputs: Sequence[Tensor]) -> Tensor:
        size = stage_outputs[-1].shape[-2:]
        resized = [
            out
            if out.shape[-2:] == size
            else F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            for out in stage_outputs
        ]
        return self.activation(self.bn(self.conv(torch.cat(resized, dim=1))))
