"""Low-rank NDDR: NDDR's projection as a per-channel diagonal part plus a rank-r correction."""

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
    output_memory_format,
)
from nddr.models.fusion.cross_stitch import CrossStitch, mix_channels
from nddr.models.fusion.nddr import bn_scale


def resolve_rank(channels: int, rank: int | None, rank_fraction: float, min_rank: int) -> int:
    """r at a stage of C ``channels``: ``rank`` where given, else ``rank_fraction`` of C rounded
    and raised to ``min_rank``, at most C; a ValueError unless 1 <= r <= C."""
    if rank is not None:
        resolved = rank
    else:
        resolved = min(channels, max(min_rank, 1, round(rank_fraction * channels)))
    if not 1 <= resolved <= channels:
        raise ValueError(
            f"LowRankNDDR rank={resolved} must lie in [1, {channels}], the stage's channels "
            "(give a rank no larger than the narrowest stage, or rank_fraction)"
        )
    return resolved


class LowRankNDDR(Fusion):
    """NDDR (paper §3.1) with each W^k as a per-channel diagonal part plus a rank-r correction.

    Task k's output before batch norm is ``sum_j D_kj x_j + U_k V x``: D_kj is diagonal (one
    weight per channel and task pair, the part the diagonal init of §4.1 sets: ``alpha`` on the
    own task, ``beta`` on the others; a per-channel cross-stitch unit), V a 1x1 down-projection
    KC -> r of the concatenated features shared by the tasks and U_k an up-projection r -> C per
    task, so the layer holds K^2 C + 2 K C r weights instead of K^2 C^2 (for K = 2 and r = C / 8
    about 1/8 of NDDR's, as its multiply-adds). The correction starts at zero (U = 0 as LoRA's, Hu et
    al. 2022; V with orthonormal rows), so init (1, 0) gives the single-task columns exactly
    whatever r.
    Then batch norm and ReLU over the K C channels in NDDR's task-major order. D, U and V are
    decayed and trained at the fusion rate by NDDR's rules (:func:`nddr.parameter_groups`; D is
    named in ``DECAYED``); ``nddr inspect`` reads the blocks of D + U V.

    Args:
        channels: C.
        num_tasks: K.
        rank_fraction: r as a fraction of each stage's C (rounded); the default 1/8 keeps the
            layers under 10 % of ResNet-50/101's FLOPs.
        min_rank: The least r a stage gets from ``rank_fraction`` (at most its C), so narrow
            stages keep enough directions, as squeeze-excitation's reduction has a floor (Hu et
            al. 2018; torchvision's ``SqueezeExcitation``, timm's ``rd_divisor``). The default 32
            binds below 256 channels, where the layer is cheap: ResNet's 64-wide stem stage,
            VGG's first two and the CPU suites' ``tiny`` backbone (README: Efficient fusion).
        rank: r at every stage instead (1 <= r <= the narrowest stage's C).
        init: ``(alpha, beta)`` for the diagonal part, as NDDR's diagonal init.
        divide_beta: Spread ``beta`` over the K - 1 other tasks (default) or give each ``beta``.
        activation: Apply the ReLU (the paper's layer).
        bn_momentum, bn_eps: Batch norm settings, NDDR's defaults.
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        **BATCH_NORM_RANGES,
        "rank": (1, math.inf),
        "min_rank": (1, math.inf),
    }
    DECAYED: ClassVar[tuple[str, ...]] = ("diagonal.weight",)

    def __init__(
        self,
        channels: int,
        num_tasks: int,
        rank_fraction: float = 0.125,
        min_rank: int = 32,
        rank: int | None = None,
        init: tuple[float, float] = (0.9, 0.1),
        divide_beta: bool = True,
        activation: bool = True,
        bn_momentum: float = 0.05,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__(channels, num_tasks)
        self.rank = resolve_rank(channels, rank, rank_fraction, min_rank)
        self.init = check_init(init, "LowRankNDDR")
        width = channels * num_tasks
        self.diagonal = CrossStitch(channels, num_tasks, self.init, divide_beta)
        self.down = nn.Conv2d(width, self.rank, kernel_size=1, bias=False)
        self.up = nn.Conv2d(self.rank, width, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(width, eps=bn_eps, momentum=bn_momentum)
        self.activation = nn.ReLU(inplace=True) if activation else nn.Identity()
        self.reset_parameters()

    @classmethod
    def check_options(cls, options: Mapping[str, object]) -> None:
        """The base checks, with ``rank`` an integer or ``None`` and ``rank_fraction`` in (0, 1]."""
        rank = options.get("rank")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)):
            raise ValueError(f"LowRankNDDR option rank is an integer or null, got {rank!r}")
        super().check_options(
            {key: value for key, value in options.items() if key != "rank" or value is not None}
        )
        fraction = options.get("rank_fraction", 1)
        if not 0 < fraction <= 1:
            raise ValueError(f"LowRankNDDR option rank_fraction lies in (0, 1], got {fraction!r}")

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The diagonal init in D, U = 0, V with orthonormal rows, a fresh BN.

        With V V^T = I an SGD step on U moves D + U V as NDDR's step on its dense weight would,
        projected on V's r input directions; PyTorch's default convolution init (uniform, variance
        1 / (3 K C)) would move it a third as far."""
        self.diagonal.reset_parameters()
        nn.init.orthogonal_(self.down.weight)
        nn.init.zeros_(self.up.weight)
        self.bn.reset_parameters()

    def _fuse(self, features: Sequence[Tensor], stacked: Tensor) -> Tensor:
        """Batch-normed, activated ``D x + U V x`` as one task-major [N, K*C, H, W] tensor, from
        the tasks' features and the same features concatenated on channels."""
        correction = self.up(self.down(stacked)).split(self.channels, dim=1)
        projected = mix_channels(features, self.diagonal.weight, base=correction)
        return self.activation(self.bn(torch.cat(projected, dim=1)))

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        self.check_features(features)
        fused = self._fuse(features, torch.cat(list(features), dim=1))
        memory_format = output_memory_format(features[0])
        return [
            block.contiguous(memory_format=memory_format)
            for block in fused.split(self.channels, dim=1)
        ]

    def forward_stacked(self, features: Tensor) -> Tensor:
        """The layer on task-major stacked features (the grouped-columns execution)."""
        return self._fuse(features.split(self.channels, dim=1), features)

    def dense_weight(self) -> Tensor:
        """D + U V as NDDR's dense [K*C, K*C] matrix (task-major rows and columns, float64)."""
        k, c = self.num_tasks, self.channels
        diagonal = self.diagonal.weight.detach().to(torch.float64).cpu()  # [K, K, C]
        dense = torch.zeros(k, c, k, c, dtype=torch.float64)
        index = torch.arange(c)
        dense[:, index, :, index] = diagonal.permute(2, 0, 1)
        up = self.up.weight.detach().to(torch.float64).cpu()[:, :, 0, 0]
        down = self.down.weight.detach().to(torch.float64).cpu()[:, :, 0, 0]
        return dense.reshape(k * c, k * c) + up @ down

    def block_norms(self, fold_bn: bool = False) -> Tensor:
        """Frobenius norms of the C x C blocks W_kj of D + U V; with ``fold_bn`` each output
        channel's row first scaled by its batch norm's gamma / sqrt(var + eps)."""
        k, c = self.num_tasks, self.channels
        weight = self.dense_weight().view(k, c, k, c)
        if fold_bn:
            weight = weight * bn_scale(self.bn).view(k, c, 1, 1)
        return torch.linalg.vector_norm(weight, dim=(1, 3))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, init={self.init}"
