"""Sluice networks (Ruder et al., AAAI 2019) mapped from LSTM layers to CNN stages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nddr.models.fusion.base import Fusion, check_init, diagonal_mixing


class Sluice(Fusion):
    """Sluice alpha layer for CNN feature maps, with the subspace orthogonality penalty.

    Mapping from the paper, which fuses LSTM layers: the hidden state of task k at layer l is here
    the stage output of column k; its M subspaces G_{k,1..M} are M contiguous channel groups of
    C / M channels (the paper and NDDR-CNN use M = 2). A learned (MK x MK) matrix alpha mixes every
    subspace of every task into every subspace, G'_a = sum_b alpha_ab G_b, the same at each pixel.
    The penalty sum_k sum_{m<m'} ||G_{k,m}^T G_{k,m'}||_F^2 treats the batch's pixels as the
    paper's rows (G_{k,m} is [N*H*W, C/M]); each term is divided by ||G_{k,m}||_F^2 ||G_{k,m'}||_F^2
    so it lies in [0, 1] whatever the feature scale (unnormalised, it reaches 1e2-1e4 on CNN
    features and swamps the task losses), and the sum is weighted by ``penalty_weight``. It is
    computed on the layer's
    inputs at every forward with autograd on (not under ``torch.no_grad``) and kept in
    :attr:`orthogonality_penalty` for the training loss.
    The beta "layer selection" before the heads is :class:`LayerSelection`.

    Args:
        channels: C, divisible by ``num_subspaces``.
        num_tasks: K.
        num_subspaces: M.
        init: ``(alpha, beta)``: each subspace keeps ``alpha`` of itself and takes ``beta`` from the
            same subspace of the other tasks (``beta / (K - 1)`` each with ``divide_beta``); mixing
            across subspaces starts at 0, so the layer starts as a cross-stitch unit.
        penalty_weight: Weight of the orthogonality penalty in the training loss.
    """

    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        "num_subspaces": (1, math.inf),
        "penalty_weight": (0.0, math.inf),
    }

    def __init__(
        self,
        channels: int,
        num_tasks: int,
        num_subspaces: int = 2,
        init: tuple[float, float] = (0.9, 0.1),
        divide_beta: bool = True,
        penalty_weight: float = 0.1,
    ) -> None:
        super().__init__(channels, num_tasks)
        if num_subspaces < 1 or channels % num_subspaces:
            raise ValueError(
                f"Sluice splits a stage's channels into num_subspaces={num_subspaces} equal "
                f"subspaces: {channels} channels do not divide by {num_subspaces} (use a "
                "num_subspaces that divides every stage's channels, or other stage widths)"
            )
        self.num_subspaces = num_subspaces
        self.init = check_init(init, "Sluice")
        self.divide_beta = divide_beta
        self.penalty_weight = float(penalty_weight)
        size = num_tasks * num_subspaces
        self.alpha = nn.Parameter(torch.empty(size, size))
        self.orthogonality_penalty: Tensor | None = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        tasks = diagonal_mixing(self.num_tasks, *self.init, divide_beta=self.divide_beta)
        eye = torch.eye(self.num_subspaces)
        self.alpha.copy_(torch.kron(tasks, eye))

    def subspaces(self, features: Sequence[Tensor]) -> Tensor:
        """The inputs as [K*M, N, C/M, H, W]: row k*M + m is subspace m of task k."""
        stacked = torch.stack(list(features))  # [K, N, C, H, W]
        k, n, c, h, w = stacked.shape
        m = self.num_subspaces
        grouped = stacked.view(k, n, m, c // m, h, w).transpose(1, 2)
        return grouped.reshape(k * m, n, c // m, h, w)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        self.check_features(features)
        groups = self.subspaces(features)
        self.orthogonality_penalty = (
            self._orthogonality(groups) if torch.is_grad_enabled() else None
        )
        mixed = torch.einsum("ab,bnshw->anshw", self.alpha, groups)
        k, m = self.num_tasks, self.num_subspaces
        _, n, s, h, w = mixed.shape
        out = mixed.view(k, m, n, s, h, w).transpose(1, 2).reshape(k, n, m * s, h, w)
        return list(out.unbind(0))

    def _orthogonality(self, groups: Tensor) -> Tensor:
        k, m = self.num_tasks, self.num_subspaces
        _, n, s, h, w = groups.shape
        rows = groups.view(k, m, n, s, h * w).permute(0, 1, 2, 4, 3).reshape(k, m, n * h * w, s)
        penalty = groups.new_zeros(())
        for first in range(m):
            for second in range(first + 1, m):
                gram = rows[:, first].transpose(1, 2) @ rows[:, second]
                scale = rows[:, first].pow(2).sum((1, 2)) * rows[:, second].pow(2).sum((1, 2))
                penalty = penalty + (gram.pow(2).sum((1, 2)) / scale.clamp(min=1e-12)).sum()
        return self.penalty_weight * penalty

    def auxiliary_loss(self) -> Tensor | None:
        """The orthogonality penalty of the last forward (``None`` after one without autograd)."""
        return self.orthogonality_penalty

    def block_norms(self, fold_bn: bool = False) -> Tensor:
        """``||alpha_kj||_F`` of the M x M blocks of alpha mapping task j's subspaces to task
        k's (W_kj repeats each entry over C / M channels: a common factor sqrt(C / M)). There is
        no batch norm to fold."""
        k, m = self.num_tasks, self.num_subspaces
        alpha = self.alpha.detach().to(torch.float64).cpu().reshape(k, m, k, m)
        return torch.linalg.vector_norm(alpha, dim=(1, 3))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_subspaces={self.num_subspaces}, init={self.init}"


class LayerSelection(nn.Module):
    """Sluice networks' beta: a task's head sees a learned mixture of all its stage outputs.

    CNN mapping: stage outputs differ in size and width, so each is resized bilinearly to the last
    stage's size and, where its width differs from the last stage's, brought to that width by a
    1x1 convolution (no bias). beta starts one-hot on the last stage, so the network starts as the
    plain one. With ``shortcut=True`` the builder uses :class:`~nddr.models.fusion.Shortcut` instead: its
    1x1 convolution over the concatenated stage outputs contains every beta-weighted mixture.
    """

    def __init__(self, stage_channels: Sequence[int]) -> None:
        super().__init__()
        self.stage_channels = tuple(stage_channels)
        out_channels = self.stage_channels[-1]
        self.projections = nn.ModuleList(
            nn.Identity()
            if channels == out_channels
            else nn.Conv2d(channels, out_channels, kernel_size=1, bias=False)
            for channels in self.stage_channels
        )
        beta = torch.zeros(len(self.stage_channels))
        beta[-1] = 1.0
        self.beta = nn.Parameter(beta)

    def forward(self, stage_outputs: Sequence[Tensor]) -> Tensor:
        size = stage_outputs[-1].shape[-2:]
        mixed = stage_outputs[-1] * self.beta[-1]
        for beta, project, output in zip(self.beta[:-1], self.projections, stage_outputs[:-1]):
            if output.shape[-2:] != size:
                output = F.interpolate(output, size=size, mode="bilinear", align_corners=False)
            mixed = mixed + beta * project(output)
        return mixed
