"""What every fusion module shares: the K-in / K-out contract and the diagonal initialisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def diagonal_mixing(num_tasks: int, alpha: float, beta: float, divide_beta: bool = True) -> Tensor:
    """The K x K task-mixing matrix of the diagonal initialisation (paper §4.1, eq. 3).

    Entry [k, j] weighs task j's input in task k's output: ``alpha`` on the diagonal, ``beta`` off it.
    With ``divide_beta`` each of the K - 1 other tasks gets ``beta / (K - 1)``, so every row sums to
    ``alpha + beta`` whatever K is (for K = 2 both readings agree with the paper).
    """
    off_diagonal = beta / (num_tasks - 1) if divide_beta and num_tasks > 1 else beta
    mixing = torch.full((num_tasks, num_tasks), float(off_diagonal))
    mixing.fill_diagonal_(float(alpha))
    return mixing


class Fusion(nn.Module):
    """Base class: fuses the K task columns' features of one stage end.

    ``forward(features)`` takes K tensors of shape [N, C, H, W] and returns K tensors of the same
    shape, the k-th one feeding task k's next stage.
    """

    def __init__(self, channels: int, num_tasks: int) -> None:
        super().__init__()
        if channels < 1 or num_tasks < 1:
            raise ValueError(f"channels and num_tasks must be >= 1, got {channels} and {num_tasks}")
        self.channels = channels
        self.num_tasks = num_tasks

    def check_features(self, features: Sequence[Tensor]) -> None:
        """Raise a clear error unless ``features`` is K tensors of shape [N, C, H, W], all alike."""
        if len(features) != self.num_tasks:
            raise ValueError(
                f"{type(self).__name__} fuses {self.num_tasks} tasks but got {len(features)} tensors"
            )
        first = features[0]
        if first.dim() != 4 or first.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} expects [N, {self.channels}, H, W] tensors, got {list(first.shape)}"
            )
        for k, feature in enumerate(features[1:], start=1):
            if feature.shape != first.shape:
                raise ValueError(
                    f"{type(self).__name__}: task {k}'s features {list(feature.shape)} differ from "
                    f"task 0's {list(first.shape)}; all columns must give the same shape at a stage end"
                )

    def forward_stacked(self, features: Tensor) -> Tensor:
        """Fuse the K tasks' features held as one [N, K*C, H, W] tensor (task k in channel block k).

        The form the grouped-columns execution passes between stages; this generic version splits,
        fuses and concatenates, and a fusion that works on the stacked tensor directly overrides it.
        """
        return torch.cat(self(list(features.split(self.channels, dim=1))), dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, num_tasks={self.num_tasks}"
