"""Grouped-columns execution: K task columns run as one network of grouped convolutions.

The K columns of a fused network have the same structure. Stacking the k-th column's weights
into channel block k of one convolution with ``groups = K`` (and of one batch norm over K*C
channels) gives a single network whose activations are the K columns' activations concatenated on
channels: the NDDR concatenation becomes free and every layer is one kernel call instead of K.
The function computed is the same; :func:`group_columns` checks it numerically before use.

The state dict keeps the per-column layout (``columns.<k>.stages...``), so checkpoints move freely
between the two executions.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from nddr.errors import NddrError
from nddr.models.backbones import StagedBackbone

# Modules without state that act on each channel on its own: valid as they are on stacked columns.
CHANNELWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Mish,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Upsample,
)


class NotGroupable(NddrError):
    """A column holds a layer that mixes channels in a way grouped execution cannot stack."""


def group_modules(modules: Sequence[nn.Module]) -> nn.Module:
    """One module computing the K structurally identical ``modules`` side by side on channels.

    New layers are made on the meta device and filled from the columns, so grouping draws nothing
    from the global random state (a seeded run stays the same run).

    Convolutions become grouped convolutions (their groups times K), batch and group norms widen
    K-fold, channel-wise layers stay as they are, and containers are rebuilt around their grouped
    children (their own ``forward`` code runs unchanged on the stacked tensors).
    """
    first = modules[0]
    if any(type(module) is not type(first) for module in modules):
        raise NotGroupable(f"columns differ in structure: {type(first).__name__} vs others")
    if isinstance(first, nn.Conv2d):
        return _group_conv(modules)
    if isinstance(first, nn.modules.batchnorm._BatchNorm):
        return _group_batch_norm(modules)
    if isinstance(first, nn.GroupNorm):
        return _group_group_norm(modules)
    if isinstance(first, CHANNELWISE):
        return copy.deepcopy(first)
    if first._parameters or any(b is not None for b in first._buffers.values()):
        raise NotGroupable(
            f"{type(first).__name__} holds its own parameters, which grouped execution cannot stack"
        )
    if not first._modules:
        return copy.deepcopy(first)
    grouped = copy.copy(first)
    grouped._parameters = {}
    grouped._buffers = {}
    grouped._non_persistent_buffers_set = set()
    grouped._modules = {
        name: None if child is None else group_modules([m._modules[name] for m in modules])
        for name, child in first._modules.items()
    }
    return grouped


def _same(modules: Sequence[nn.Module], attributes: Sequence[str]) -> None:
    for attribute in attributes:
        values = {repr(getattr(module, attribute)) for module in modules}
        if len(values) > 1:
            raise NotGroupable(f"columns differ in {type(modules[0]).__name__}.{attribute}")


@torch.no_grad()
def _stack_into(target: nn.Module, modules: Sequence[nn.Module], names: Sequence[str]) -> None:
    for name in names:
        sources = [getattr(module, name) for module in modules]
        if sources[0] is None:
            continue
        destination = getattr(target, name)
        if destination.dim() == 0:
            destination.copy_(sources[0])
        else:
            destination.copy_(torch.cat(list(sources)))
        if isinstance(destination, nn.Parameter):
            destination.requires_grad_(sources[0].requires_grad)


def _group_conv(convs: Sequence[nn.Conv2d]) -> nn.Conv2d:
    _same(convs, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"))
    _same(convs, ("groups", "padding_mode"))
    first, k = convs[0], len(convs)
    grouped = nn.Conv2d(
        first.in_channels * k,
        first.out_channels * k,
        first.kernel_size,
        first.stride,
        first.padding,
        first.dilation,
        groups=first.groups * k,
        bias=first.bias is not None,
        padding_mode=first.padding_mode,
        device="meta",
        dtype=first.weight.dtype,
    ).to_empty(device=first.weight.device)
    _stack_into(grouped, convs, ("weight", "bias"))
    return grouped


def _group_batch_norm(norms: Sequence[nn.modules.batchnorm._BatchNorm]) -> nn.Module:
    _same(norms, ("num_features", "eps", "momentum", "affine", "track_running_stats"))
    first, k = norms[0], len(norms)
    reference = first.weight if first.affine else first.running_mean
    grouped = type(first)(
        first.num_features * k,
        eps=first.eps,
        momentum=first.momentum,
        affine=first.affine,
        track_running_stats=first.track_running_stats,
        device="meta",
        dtype=None if reference is None else reference.dtype,
    ).to_empty(device="cpu" if reference is None else reference.device)
    _stack_into(
        grouped, norms, ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    )
    grouped.train(first.training)
    return grouped


def _group_group_norm(norms: Sequence[nn.GroupNorm]) -> nn.GroupNorm:
    _same(norms, ("num_groups", "num_channels", "eps", "affine"))
    first, k = norms[0], len(norms)
    grouped = nn.GroupNorm(
        first.num_groups * k,
        first.num_channels * k,
        eps=first.eps,
        affine=first.affine,
        device="meta",
    ).to_empty(device="cpu" if first.weight is None else first.weight.device)
    _stack_into(grouped, norms, ("weight", "bias"))
    return grouped


class GroupedColumns(nn.Module):
    """K copies of a staged backbone run as one: stage s maps [N, K*C_in] to [N, K*C_out].

    The input image is repeated K times on channels, so the first convolution is grouped like
    the rest. Built by :func:`group_columns`; ``len()`` is K as for the list of columns.
    """

    def __init__(self, columns: Sequence[StagedBackbone]) -> None:
        super().__init__()
        first = columns[0]
        if any(column.num_stages != first.num_stages for column in columns):
            raise NotGroupable("columns differ in their number of stages")
        self.num_columns = len(columns)
        self.channels = first.channels
        self.strides = first.strides
        self.name = first.name
        self.stages = nn.ModuleList(
            group_modules([column.stages[s] for column in columns]) for s in range(first.num_stages)
        )
        self._register_state_dict_hook(_columns_state_dict)
        self._register_load_state_dict_pre_hook(_stacked_state_dict)

    def __len__(self) -> int:
        return self.num_columns

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def stem_input(self, images: Tensor) -> Tensor:
        """The image as every column's input: K copies side by side on channels."""
        return images.repeat(1, self.num_columns, 1, 1)

    def split(self, features: Tensor, stage: int) -> list[Tensor]:
        """Stage ``stage``'s stacked output as the K columns' tensors (views, no copy)."""
        return list(features.split(self.channels[stage], dim=1))

    def extra_repr(self) -> str:
        return f"num_columns={self.num_columns}, name={self.name!r}, channels={self.channels}"


def _columns_state_dict(
    module: GroupedColumns, state: dict[str, Any], prefix: str, local_metadata: Any
) -> None:
    """State-dict hook: present stacked entries as the per-column entries they stand for."""
    for key in [key for key in state if key.startswith(prefix + "stages.")]:
        value = state.pop(key)
        rest = key[len(prefix) :]
        parts = (
            value.chunk(module.num_columns)
            if value.dim()
            else [value.clone() for _ in range(module.num_columns)]
        )
        for column, part in enumerate(parts):
            state[f"{prefix}{column}.{rest}"] = part


def _stacked_state_dict(
    state: dict[str, Any], prefix: str, local_metadata: Any, strict: bool, *unused: Any
) -> None:
    """Load pre-hook: stack per-column entries (``<k>.stages...``) into the grouped ones."""
    columns: dict[str, dict[int, Tensor]] = {}
    for key in [key for key in state if key.startswith(prefix)]:
        column, _, rest = key[len(prefix) :].partition(".")
        if column.isdigit() and rest.startswith("stages."):
            columns.setdefault(rest, {})[int(column)] = state.pop(key)
    for rest, parts in columns.items():
        ordered = [parts[k] for k in sorted(parts)]
        state[prefix + rest] = ordered[0] if ordered[0].dim() == 0 else torch.cat(ordered)


@torch.no_grad()
def group_columns(
    columns: Sequence[StagedBackbone], check_size: int = 64, tolerance: float = 1e-4
) -> GroupedColumns:
    """Group ``columns`` and check on a random image that every stage output is unchanged.

    Raises :class:`NotGroupable` (one line, naming the fix) when a layer cannot be stacked or the
    grouped stages compute something else, e.g. a block that mixes channels without a convolution.
    """
    try:
        grouped = GroupedColumns(columns)
    except NotGroupable as error:
        raise NotGroupable(
            f"backbone {columns[0].name!r} cannot run as grouped columns ({error}): "
            "use model.execution=columns"
        ) from None
    parameter = next(columns[0].parameters(), None)
    if parameter is None or parameter.device.type == "meta":
        return grouped
    modes = [column.training for column in columns]
    for module in (*columns, grouped):
        module.eval()
    try:
        generator = torch.Generator().manual_seed(0)
        # A different image per column, so that mixing across columns cannot go unseen even
        # while the columns' weights are still equal copies.
        separate = [
            torch.randn(2, 3, check_size, check_size, generator=generator).to(parameter)
            for _ in columns
        ]
        stacked = torch.cat(separate, dim=1)
        for stage in range(grouped.num_stages):
            separate = [column.stages[stage](x) for column, x in zip(columns, separate)]
            try:
                stacked = grouped.stages[stage](stacked)
            except RuntimeError as error:
                raise NotGroupable(
                    f"backbone {columns[0].name!r} cannot run as grouped columns (stage {stage} "
                    f"fails on stacked columns: {str(error).splitlines()[0]}): "
                    "use model.execution=columns"
                ) from None
            expected = torch.cat(separate, dim=1)
            scale = expected.abs().max().clamp(min=1.0)
            if (
                stacked.shape != expected.shape
                or (stacked - expected).abs().max() > tolerance * scale
            ):
                raise NotGroupable(
                    f"backbone {columns[0].name!r} cannot run as grouped columns (stage {stage} "
                    "mixes channels across columns): use model.execution=columns"
                )
    finally:
        for column, mode in zip(columns, modes):
            column.train(mode)
        grouped.train(modes[0])
    return grouped
