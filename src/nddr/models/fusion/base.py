"""What every fusion module shares: the K-in / K-out contract and the diagonal initialisation."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import ClassVar

import torch
from torch import Tensor, nn

BATCH_NORM_RANGES: Mapping[str, tuple[float, float]] = {
    "bn_momentum": (0.0, 1.0),
    "bn_eps": (0.0, 1.0),
}
"""The values a batch norm's momentum and epsilon take (fusion layers, columns and heads)."""


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


def output_memory_format(like: Tensor) -> torch.memory_format:
    """The memory format a fusion gives its outputs: channels-last where ``like`` (a task's
    input) is, else contiguous, so the next stage's convolutions read them without a copy."""
    if like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def check_init(init: object, fusion: str, xavier: bool = False) -> tuple[float, float] | str:
    """``init`` as the diagonal initialisation's ``(alpha, beta)`` floats, or ``"xavier"`` where
    the fusion has it; anything else is a ValueError naming the inits ``fusion`` takes."""
    if xavier and init == "xavier":
        return "xavier"
    if (
        isinstance(init, Sequence)
        and not isinstance(init, str)
        and len(init) == 2
        and all(_is_finite_number(value) for value in init)
    ):
        return (float(init[0]), float(init[1]))
    takes = "(alpha, beta), two finite numbers such as [0.9, 0.1]"
    takes += ", or 'xavier'" if xavier else " (xavier is NDDR's only)"
    raise ValueError(f"{fusion} init takes {takes}; got {init!r}")


def _is_finite_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


class Fusion(nn.Module):
    """Base class: fuses the K task columns' features of one stage end.

    ``forward(features)`` takes K tensors of shape [N, C, H, W] and returns K tensors of the same
    shape, the k-th one feeding task k's next stage.

    Its options are the constructor's arguments after ``(channels, num_tasks)``;
    :meth:`check_options` validates them without building the layer (configs are checked when
    they are loaded). ``XAVIER_INIT`` says whether ``init="xavier"`` is taken; ``RANGES`` gives
    the closed interval of a numeric option whose type alone does not bound it.

    A fusion with an extra training loss returns it from :meth:`auxiliary_loss`; one that
    ``nddr inspect`` reads gives its task-to-task weights in :meth:`block_norms` (and its
    registry entry says how to name them, :mod:`nddr.models.fusion.registry`).
    """

    XAVIER_INIT: ClassVar[bool] = False
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {}
    DECAYED: ClassVar[tuple[str, ...]] = ()
    """Names of parameters weight decay applies to besides convolution and linear weights (the
    rule of :func:`nddr.parameter_groups`), such as a 1x1 projection's part held as a tensor."""

    def __init__(self, channels: int, num_tasks: int) -> None:
        super().__init__()
        if channels < 1 or num_tasks < 1:
            raise ValueError(f"channels and num_tasks must be >= 1, got {channels} and {num_tasks}")
        self.channels = channels
        self.num_tasks = num_tasks

    @classmethod
    def option_defaults(cls) -> dict[str, object]:
        """The options the constructor takes, with their defaults."""
        parameters = list(inspect.signature(cls.__init__).parameters.values())[3:]
        return {parameter.name: parameter.default for parameter in parameters}

    @classmethod
    def check_options(cls, options: Mapping[str, object]) -> None:
        """Raise a one-line ValueError for an option the layer does not take or a bad value."""
        defaults = cls.option_defaults()
        name = cls.__name__
        for key, value in options.items():
            if key not in defaults:
                raise ValueError(f"{name} takes no option {key!r}; it takes {', '.join(defaults)}")
            if key == "init":
                check_init(value, name, cls.XAVIER_INIT)
            elif isinstance(defaults[key], bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} option {key} is true or false, got {value!r}")
            elif not _is_finite_number(value) or (
                isinstance(defaults[key], int) and not isinstance(value, int)
            ):
                kind = "an integer" if isinstance(defaults[key], int) else "a finite number"
                raise ValueError(f"{name} option {key} is {kind}, got {value!r}")
            elif key in cls.RANGES and not cls.RANGES[key][0] <= value <= cls.RANGES[key][1]:
                low, high = cls.RANGES[key]
                raise ValueError(f"{name} option {key} lies in [{low}, {high}], got {value!r}")

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

    def auxiliary_loss(self) -> Tensor | None:
        """The layer's extra training loss of the last forward, added to the task losses;
        ``None`` (the default) for a layer without one."""
        return None

    def block_norms(self, fold_bn: bool = False) -> Tensor:
        """[output task, input task] (float64, CPU): the norm of each task-to-task block of the
        layer's equivalent 1x1 weights, up to a factor common to all blocks (``nddr inspect``'s
        shares are the row-normalised norms). ``fold_bn`` folds the layer's batch-norm scale of
        each output channel in first, for layers that have one."""
        raise NotImplementedError(f"{type(self).__name__} does not give its block norms")

    def extra_repr(self) -> str:
        return f"channels={self.channels}, num_tasks={self.num_tasks}"
