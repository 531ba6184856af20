"""Grouped NDDR: the NDDR projection in G channel groups, 1/G of its weights and FLOPs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from nddr.models.fusion.base import (
    BATCH_NORM_RANGES,
    Fusion,
    check_init,
    diagonal_mixing,
    output_memory_format,
)
from nddr.models.fusion.nddr import bn_scale


def interleave(features: Sequence[Tensor], groups: int) -> Tensor:
    """The K tasks' [N, C, H, W] features as one [N, K*C, H, W] tensor in group order: block g
    holds channel slice g (C / G channels) of task 0, then of task 1, ..., so a convolution with
    ``groups=G`` lets every group see the same slice of every task (as ShuffleNet's channel
    shuffle, Zhang et al. 2018, lets groups see each other)."""
    slices = [feature.unflatten(1, (groups, -1)) for feature in features]  # [N, G, C/G, H, W]
    return torch.stack(slices, dim=2).flatten(1, 3)


def deinterleave(fused: Tensor, num_tasks: int, groups: int, like: Tensor) -> list[Tensor]:
    """Inverse of :func:`interleave`: the K tasks' [N, C, H, W] blocks, each one contiguous
    tensor in ``like``'s memory format (a strided view would be copied by every convolution
    reading it, forward and backward: benchmarks/nddr_output_layout.py)."""
    memory_format = output_memory_format(like)
    by_task = fused.unflatten(1, (groups, num_tasks, -1))  # [N, G, K, C/G, H, W]
    return [
        by_task[:, :, task].flatten(1, 2).contiguous(memory_format=memory_format)
        for task in range(num_tasks)
    ]


def stacked_to_interleaved(features: Tensor, num_tasks: int, groups: int) -> Tensor:
    """Task-major stacked features [N, K*C, H, W] (task k in channel block k) in group order."""
    return features.unflatten(1, (num_tasks, groups, -1)).transpose(1, 2).flatten(1, 3)


def interleaved_to_stacked(fused: Tensor, num_tasks: int, groups: int) -> Tensor:
    """Group-order features [N, K*C, H, W] back in task-major order."""
    return fused.unflatten(1, (groups, num_tasks, -1)).transpose(1, 2).flatten(1, 3)


def check_groups(channels: int, groups: int, fusion: str) -> None:
    """Raise a one-line ValueError unless ``groups`` divides ``channels``."""
    if groups < 1 or channels % groups:
        raise ValueError(
            f"{fusion} splits each task's channels into groups={groups} equal slices: "
            f"{channels} channels do not divide by {groups} (use groups that divide every "
            "stage's width)"
        )


def resolve_groups(channels: int, groups: int, min_group_width: int) -> int:
    """G at a stage of C ``channels``: the largest divisor of ``groups`` that leaves at least
    ``min_group_width`` channels per task in each group (1 where none does)."""
    return max(
        divisor
        for divisor in range(1, groups + 1)
        if groups % divisor == 0 and (divisor == 1 or channels // divisor >= min_group_width)
    )


def grouped_diagonal(num_tasks: int, group_width: int, groups: int, mixing: Tensor) -> Tensor:
    """The [G*K*s, K*s] weight of a ``groups=G`` 1x1 convolution over group-order features
    (s = C / G channels per task and group) that is the diagonal init: each group maps slice
    channel a of task j to slice channel a of task k with weight ``mixing[k, j]``."""
    eye = torch.eye(group_width, dtype=mixing.dtype)
    block = (mixing[:, None, :, None] * eye[None, :, None, :]).reshape(
        num_tasks * group_width, num_tasks * group_width
    )
    return block.repeat(groups, 1)


def grouped_block_norms(
    weight: Tensor, num_tasks: int, groups: int, scale: Tensor | None
) -> Tensor:
    """[output task, input task] Frobenius norms of the task-to-task blocks of a grouped 1x1
    weight [G*K*s, K*s] over group-order features; ``scale`` (G*K*s output channels, or ``None``)
    multiplies each output channel's row first."""
    weight = weight.detach().to(torch.float64).cpu()
    if scale is not None:
        weight = weight * scale[:, None]
    blocks = weight.reshape(groups, num_tasks, -1, num_tasks, weight.shape[1] // num_tasks)
    return torch.linalg.vector_norm(blocks, dim=(0, 2, 4))


class GroupedNDDR(Fusion):
    """NDDR (paper §3.1) with its KC -> KC 1x1 convolution in G channel groups.

    Group g takes channel slice g (C / G channels) of every task and gives task k's output slice
    g, a (K C / G) -> (K C / G) NDDR of its own (grouped convolutions as in ResNeXt, Xie et al.
    2017; the slice of every task in each group as ShuffleNet's channel shuffle, Zhang et al.
    2018). The weights and multiply-adds are NDDR's divided by G; the diagonal init (§4.1) lies
    within the groups, so init (1, 0) still gives the single-task columns exactly. G = 1 is NDDR;
    G = C a per-channel cross-stitch unit followed by batch norm and ReLU. The convolution's
    weight is decayed and trained at the fusion rate by the same rules as NDDR's
    (:func:`nddr.parameter_groups`); ``nddr inspect`` reads its equivalent dense blocks W_kj.

    Args:
        channels: C, divisible by the stage's G.
        num_tasks: K.
        groups: G (the default 8 keeps the layers under 10 % of ResNet-50/101's FLOPs).
        min_group_width: The fewest channels per task a group keeps: a stage narrower than
            ``groups * min_group_width`` takes the largest divisor of ``groups`` that leaves
            that many (group width as RegNet's design parameter, Radosavovic et al. 2020). The
            default 32 binds below 256 channels, where the layer is cheap: ResNet's 64-wide
            stem stage, VGG's first two and the CPU suites' ``tiny`` backbone (README:
            Efficient fusion).
        init: ``(alpha, beta)`` for the diagonal initialisation, as NDDR's.
        divide_beta: Spread ``beta`` over the K - 1 other tasks (default) or give each ``beta``.
        activation: Apply the ReLU (the paper's layer).
        bn_momentum, bn_eps: Batch norm settings, NDDR's defaults.
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        **BATCH_NORM_RANGES,
        "groups": (1, math.inf),
        "min_group_width": (1, math.inf),
    }

    def __init__(
        self,
        channels: int,
        num_tasks: int,
        groups: int = 8,
        min_group_width: int = 32,
        init: tuple[float, float] = (0.9, 0.1),
        divide_beta: bool = True,
        activation: bool = True,
        bn_momentum: float = 0.05,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__(channels, num_tasks)
        groups = resolve_groups(channels, groups, min_group_width)
        check_groups(channels, groups, "GroupedNDDR")
        self.groups = groups
        self.init = check_init(init, "GroupedNDDR")
        self.divide_beta = divide_beta
        width = channels * num_tasks
        self.conv = nn.Conv2d(width, width, kernel_size=1, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(width, eps=bn_eps, momentum=bn_momentum)
        self.activation = nn.ReLU(inplace=True) if activation else nn.Identity()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The diagonal init in every group, and the batch norm as fresh."""
        mixing = diagonal_mixing(self.num_tasks, *self.init, divide_beta=self.divide_beta)
        weight = grouped_diagonal(self.num_tasks, self.channels // self.groups, self.groups, mixing)
        self.conv.weight.copy_(weight[:, :, None, None])
        self.bn.reset_parameters()

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        self.check_features(features)
        fused = self.activation(self.bn(self.conv(interleave(features, self.groups))))
        return deinterleave(fused, self.num_tasks, self.groups, like=features[0])

    def forward_stacked(self, features: Tensor) -> Tensor:
        """The layer on task-major stacked features (the grouped-columns execution)."""
        k, g = self.num_tasks, self.groups
        fused = self.conv(stacked_to_interleaved(features, k, g))
        return interleaved_to_stacked(self.activation(self.bn(fused)), k, g)

    def block_norms(self, fold_bn: bool = False) -> Tensor:
        """Frobenius norms of the blocks W_kj of the equivalent dense 1x1 weights (zero outside
        the groups); with ``fold_bn`` each output row first scaled by its batch norm's
        gamma / sqrt(var + eps)."""
        scale = bn_scale(self.bn) if fold_bn else None
        return grouped_block_norms(self.conv.weight[:, :, 0, 0], self.num_tasks, self.groups, scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, groups={self.groups}, init={self.init}"
