"""The NDDR layer (paper §3.1): concatenation, 1x1 conv, batch norm, ReLU."""

from __future__ import annotations

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


class NDDR(Fusion):
    """Neural Discriminative Dimensionality Reduction layer (paper §3.1, eq. 1-3).

    The K task features are concatenated on channels (KC) and, per task k, projected back to C
    channels by a 1x1 convolution W^k (no bias), then batch normalised and passed through a ReLU.
    Weight decay on W^k (set by :func:`nddr.parameter_groups`) completes the paper's layer.

    The K projections are held as one KC -> KC convolution whose k-th block of C output channels is
    W^k, and the K batch norms as one over KC channels: the same function in one kernel call.
    :meth:`forward_stacked` serves the grouped-columns execution, which passes the K tasks'
    features as one tensor and needs neither the concatenation nor the split.

    Args:
        channels: C, the width of each task's features at this stage end.
        num_tasks: K.
        init: ``(alpha, beta)`` for the diagonal initialisation (§4.1): ``alpha * I`` on the task's
            own block, ``beta * I`` on the others' (divided by K - 1 when ``divide_beta``), or
            ``"xavier"`` for Xavier-uniform weights (Table 1's alternative).
        divide_beta: Spread ``beta`` over the K - 1 other tasks (default) or give each ``beta``.
        activation: Apply the ReLU (the paper's layer); turn off for backbones whose stage outputs
            are not post-activation.
        bn_momentum, bn_eps: Batch norm settings; the defaults are the released code's
            (decay 0.95, epsilon 1e-3).
    """

    XAVIER_INIT = True
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = BATCH_NORM_RANGES

    def __init__(
        self,
        channels: int,
        num_tasks: int,
        init: tuple[float, float] | str = (0.9, 0.1),
        divide_beta: bool = True,
        activation: bool = True,
        bn_momentum: float = 0.05,
        bn_eps: float = 1e-3,
    ) -> None:
        super().__init__(channels, num_tasks)
        self.init = check_init(init, "NDDR", xavier=True)
        self.divide_beta = divide_beta
        width = channels * num_tasks
        self.conv = nn.Conv2d(width, width, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(width, eps=bn_eps, momentum=bn_momentum)
        self.activation = nn.ReLU(inplace=True) if activation else nn.Identity()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialise W^k as configured and the batch norm as fresh (identity statistics)."""
        k, c = self.num_tasks, self.channels
        blocks = self.conv.weight.view(k, c, k, c)  # [task out, channel out, task in, channel in]
        if self.init == "xavier":
            for task in range(k):
                nn.init.xavier_uniform_(self.conv.weight.view(k, c, k * c)[task])
        else:
            mixing = diagonal_mixing(k, *self.init, divide_beta=self.divide_beta)
            eye = torch.eye(c, dtype=blocks.dtype, device=blocks.device)
            blocks.copy_(mixing.to(blocks)[:, None, :, None] * eye[None, :, None, :])
        self.bn.reset_parameters()

    def task_weight(self, task: int) -> Tensor:
        """W^k as a [C, K*C] matrix: task ``task``'s projection of the concatenated features."""
        c = self.channels
        return self.conv.weight[task * c : (task + 1) * c, :, 0, 0]

    def project(self, features: Sequence[Tensor]) -> Tensor:
        """The projections F W^k for all tasks before batch norm, as one [N, K*C, H, W] tensor."""
        self.check_features(features)
        return self.conv(torch.cat(list(features), dim=1))

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        fused = self.activation(self.bn(self.project(features)))
        # Each task's block is copied out once, in the memory format it came in: as a strided
        # view of ``fused`` it would be copied by every convolution reading it, forward and
        # backward (benchmarks/nddr_output_layout.py).
        memory_format = output_memory_format(features[0])
        return [
            block.contiguous(memory_format=memory_format)
            for block in fused.split(self.channels, dim=1)
        ]

    def forward_stacked(self, features: Tensor) -> Tensor:
        """The layer on features already concatenated on channels: no copy in or out."""
        if features.dim() != 4 or features.shape[1] != self.channels * self.num_tasks:
            raise ValueError(
                f"NDDR expects stacked features [N, {self.channels * self.num_tasks}, H, W], "
                f"got {list(features.shape)}"
            )
        return self.activation(self.bn(self.conv(features)))

    def block_norms(self, fold_bn: bool = False) -> Tensor:
        """Frobenius norms of the C x C blocks W_kj of the 1x1 weights; with ``fold_bn`` each
        output channel's row first scaled by its batch norm's gamma / sqrt(var + eps)."""
        k, c = self.num_tasks, self.channels
        weight = self.conv.weight.detach().to(torch.float64).cpu().reshape(k, c, k, c)
        if fold_bn:
            weight = weight * bn_scale(self.bn).view(k, c, 1, 1)
        return torch.linalg.vector_norm(weight, dim=(1, 3))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init}"


def bn_scale(bn: nn.BatchNorm2d) -> Tensor:
    """gamma / sqrt(running var + eps) per channel (1 where the batch norm lacks either)."""
    ones = torch.ones(bn.num_features, dtype=torch.float64)
    gamma = bn.weight.detach().to(torch.float64).cpu() if bn.weight is not None else ones
    var = bn.running_var.detach().to(torch.float64).cpu() if bn.running_var is not None else ones
    return gamma / torch.sqrt(var + bn.eps)
