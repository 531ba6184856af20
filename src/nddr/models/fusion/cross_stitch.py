"""Cross-stitch units (Misra et al., CVPR 2016), the baseline NDDR generalises (paper §3.4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nddr.models.fusion.base import Fusion, check_init, diagonal_mixing


def mix_channels(
    features: Sequence[Tensor], weight: Tensor, base: Sequence[Tensor] | None = None
) -> list[Tensor]:
    """x_k' = base_k + sum_j a_kj * x_j per channel, for ``weight`` a [K, K, C] (or [K, K, 1])
    tensor of a_kj and the K tasks' [N, C, H, W] ``features``; ``base`` (K tensors, or none)
    starts each sum.

    Multiply-adds of per-channel scales broadcast over N, H, W: each output is written once,
    contiguous. (An einsum over the stacked features ran as C tiny batched matrix products plus
    copies in and out, 7-10x the time on CPU; a 1x1 convolution with C groups of K channels,
    as slow in its backward: benchmarks/fusion_profile.py.)"""
    scales = weight.to(features[0].dtype)[..., None, None]  # [K, K, C or 1, 1, 1]
    fused = []
    for k in range(len(features)):
        if base is None:
            mixed = features[0] * scales[k, 0]
            rest = range(1, len(features))
        else:
            mixed, rest = base[k], range(len(features))
        for j in rest:
            mixed = torch.addcmul(mixed, features[j], scales[k, j])
        fused.append(mixed)
    return fused


class CrossStitch(Fusion):
    """Cross-stitch unit: x_k' = sum_j a_kj x_j, a learned linear mix of the tasks' features.

    Args:
        channels: C.
        num_tasks: K.
        init: ``(alpha, beta)``: a_kk = alpha, a_kj = beta / (K - 1) (beta each without
            ``divide_beta``); the default (0.9, 0.1) is Misra et al.'s.
        per_channel: One unit per channel (a is [K, K, C], the default) or one scalar per task
            pair (a is [K, K], the original paper's form).
    """

    def __init__(
        self,
        channels: int,
        num_tasks: int,
        init: tuple[float, float] = (0.9, 0.1),
        divide_beta: bool = True,
        per_channel: bool = True,
    ) -> None:
        super().__init__(channels, num_tasks)
        self.init = check_init(init, "CrossStitch")
        self.divide_beta = divide_beta
        self.per_channel = per_channel
        shape = (num_tasks, num_tasks, channels) if per_channel else (num_tasks, num_tasks)
        self.weight = nn.Parameter(torch.empty(shape))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        mixing = diagonal_mixing(self.num_tasks, *self.init, divide_beta=self.divide_beta)
        if self.per_channel:
            mixing = mixing[:, :, None].expand(-1, -1, self.channels)
        self.weight.copy_(mixing)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        self.check_features(features)
        weight = self.weight if self.per_channel else self.weight[:, :, None]
        return mix_channels(features, weight)

    def block_norms(self, fold_bn: bool = False) -> Tensor:
        """``||a_kj||_2``: a block W_kj is the diagonal of the alphas a_kj (one per channel, or
        one scalar repeated C times). There is no batch norm to fold."""
        alphas = self.weight.detach().to(torch.float64).cpu()
        if not self.per_channel:
            alphas = alphas[:, :, None].expand(-1, -1, self.channels)
        return torch.linalg.vector_norm(alphas, dim=2)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init}, per_channel={self.per_channel}"
