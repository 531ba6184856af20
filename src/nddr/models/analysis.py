"""What the fusion layers learned: how much of each task's fused output comes from each task.

An NDDR layer (paper §3.1) gives task k the features F W^k, where F is the K tasks' features
concatenated on channels and W^k is a [KC, C] 1x1 convolution. W^k splits into K blocks W_kj of
C x C, one per input task j, so task k's output is sum_j F_j W_kj. The Frobenius norm of a block
measures how strongly task j's features drive task k's output, and

    share_kj = ||W_kj||_F / sum_j' ||W_kj'||_F

is the share of task k's output drawn from task j. The diagonal initialisation (§4.1) starts each
task's own share at alpha / (alpha + beta) (beta split over the other tasks); how far training
moves the shares away from it shows what the layer learned to exchange between tasks.
The shares read the weights only, not the features, so they ignore differences in scale between
the tasks' inputs.

Cross-stitch and sluice layers are linear maps of the same form, and their shares are the same
ratio of block norms of the equivalent 1x1 weights: a cross-stitch unit's block W_kj is the
diagonal of its alphas a_kj (one per channel, or one scalar repeated C times), so
``||W_kj||_F = ||a_kj||_2``; a sluice layer's is made of the M x M block alpha_kj of its
(KM x KM) alpha, which maps task j's M subspaces to task k's, each entry repeated over C / M
channels, so ``||W_kj||_F = sqrt(C / M) ||alpha_kj||_F`` (the factor cancels in the ratio).

:func:`fusion_shares` computes them for every fusion kind that gives its block norms
(:meth:`nddr.models.fusion.Fusion.block_norms`; its registry entry names them, :mod:`nddr.models.fusion.registry`),
:func:`format_shares` prints them,
:func:`shares_heatmap` draws them (PNG, PIL only) and :func:`shares_record` flattens them to
scalars for training logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from nddr.errors import NddrError
from nddr.io import PathLike, atomic_write
from nddr.models.fusion.registry import (
    DEFAULT_VARIANT,
    FusionEntry,
    entry_of,
    fusion_entry,
    fusion_names,
)
from nddr.models.network import MultiTaskNetwork

# Heatmap colours: white (share 0) to dark blue (share 1).
_LOW = (255, 255, 255)
_HIGH = (8, 48, 107)
CELL = 56  # smallest side of a heatmap cell, in pixels


@dataclass(frozen=True)
class LayerShares:
    """The shares of one fusion layer.

    Attributes:
        stage: The stage the layer fuses (1-based: "NDDR 1" follows the first stage).
        channels: C, each task's channels at this stage.
        tasks: The K task names, in the network's order.
        shares: K x K; ``shares[k][j]`` is the share of task k's output drawn from task j's input
            (rows: output task, columns: input task; every row sums to 1).
        kind: The fusion kind, a name of :mod:`nddr.models.fusion.registry` (the network variant; also
            the training-log prefix).
    """

    stage: int
    channels: int
    tasks: tuple[str, ...]
    shares: tuple[tuple[float, ...], ...]
    kind: str = DEFAULT_VARIANT

    @property
    def name(self) -> str:
        return f"{_shares_entry(self.kind).title} {self.stage}"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: name, kind, stage, channels, tasks and the K x K shares."""
        return {
            "name": self.name,
            "kind": self.kind,
            "stage": self.stage,
            "channels": self.channels,
            "tasks": list(self.tasks),
            "shares": [list(row) for row in self.shares],
        }


def fusion_shares(network: nn.Module, fold_bn: bool = False) -> list[LayerShares]:
    """Per fusion layer (NDDR, cross-stitch, sluice or another registered kind that gives its
    block norms), the share of each task's output drawn from each task's input.

    ``share_kj = ||W_kj||_F / sum_j' ||W_kj'||_F`` with W_kj the C x C block of the layer's
    equivalent 1x1 weights that maps task j's input channels to task k's output channels (see the
    module docstring for cross-stitch and sluice). A row whose blocks are all zero (an output that
    ignores every input) gets shares of 0.

    With ``fold_bn`` the batch norm's scale gamma / sqrt(var + eps) of each output channel of an
    NDDR layer is folded into its row of weights first, so the shares describe the normalised
    output. The scale is shared by all input blocks of an output channel: a scale common to all of
    task k's channels leaves its shares unchanged, and only scales that differ between task k's
    channels (weighting some output channels more than others) can move them. Layers without a
    batch norm (cross-stitch, sluice) refuse ``fold_bn``.

    ``network`` is a :class:`~nddr.MultiTaskNetwork` (or a wrapper with it as ``.module``, as
    DistributedDataParallel gives). Raises :class:`NddrError` if it has no fusion layers.
    """
    network = _unwrap(network)
    layers = []
    with torch.no_grad():
        for stage, fusion in enumerate(network.fusions, start=1):
            entry = entry_of(fusion)
            if entry is None or entry.shares is None:
                continue
            if fold_bn and not entry.shares.fold_bn:
                raise NddrError(
                    f"{_describe(network)}: fold_bn (--fold-bn) folds the batch norm of "
                    f"{' / '.join(_folding_titles())} layers, and {entry.title} layers have "
                    "none: leave it off"
                )
            norms = fusion.block_norms(fold_bn)
            totals = norms.sum(dim=1, keepdim=True)
            shares = norms / torch.where(totals > 0, totals, torch.ones_like(totals))
            layers.append(
                LayerShares(
                    stage=stage,
                    channels=fusion.channels,
                    tasks=tuple(network.task_names),
                    shares=tuple(tuple(float(value) for value in row) for row in shares),
                    kind=entry.name,
                )
            )
    if not layers:
        kinds = sorted(_readable_kinds(), key=lambda name: name != DEFAULT_VARIANT)
        names = [repr(name) for name in kinds]
        raise NddrError(
            f"{_describe(network)} has no fusion layers: the shares need a network of variant "
            + (f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0])
        )
    return layers


def _readable_kinds() -> list[str]:
    """The fusion kinds whose shares ``nddr inspect`` reads, in registry order."""
    return [name for name in fusion_names() if fusion_entry(name).shares is not None]


def _folding_titles() -> list[str]:
    """The titles of the readable kinds with a batch norm that ``fold_bn`` folds."""
    entries = [fusion_entry(name) for name in _readable_kinds()]
    return [entry.title for entry in entries if entry.shares.fold_bn]


def _shares_entry(kind: str) -> FusionEntry:
    """The registry entry of a readable fusion kind; a one-line error for another name."""
    entry = fusion_entry(kind)
    if entry is None or entry.shares is None:
        raise NddrError(
            f"no fusion kind {kind!r} gives shares: use one of {', '.join(_readable_kinds())}"
        )
    return entry


def _unwrap(network: nn.Module) -> MultiTaskNetwork:
    while not isinstance(network, MultiTaskNetwork):
        inner = getattr(network, "module", None) or getattr(network, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            raise NddrError(
                f"expected a MultiTaskNetwork (nddr.build_network), got {type(network).__name__}"
            )
        network = inner
    return network


def _describe(network: MultiTaskNetwork) -> str:
    variant = (network.config or {}).get("variant")
    name = f"this {variant!r} network" if isinstance(variant, str) else "this network"
    fusion = type(network.fusions[0]).__name__ if network.fusions else "none"
    return f"{name} (stage fusion: {fusion})"


def format_shares(shares: Sequence[LayerShares]) -> str:
    """A text table per layer: rows "task <-", columns the input tasks, shares in percent."""
    kind = _shares_entry(shares[0].kind if shares else DEFAULT_VARIANT)
    lines = [
        f"Share of each task's {kind.title} output drawn from each task's input "
        f"({kind.shares.basis})"
    ]
    for layer in shares:
        label_width = max(len(task) for task in layer.tasks) + 3
        widths = [max(len(task), 6) + 2 for task in layer.tasks]
        lines.append(f"{layer.name} ({layer.channels} channels per task)")
        header = " " * (2 + label_width)
        lines.append(header + "".join(f"{t:>{w}}" for t, w in zip(layer.tasks, widths)))
        for task, row in zip(layer.tasks, layer.shares):
            cells = "".join(f"{100 * s:>{w - 1}.1f}%" for s, w in zip(row, widths))
            lines.append(f"  {task + ' <-':<{label_width}}{cells}")
    return "\n".join(lines)


def shares_record(shares: Sequence[LayerShares]) -> dict[str, float]:
    """Flat scalars for training logs: ``"nddr3/normals<-segmentation": 0.23`` and so on (the
    prefix is the fusion kind and the stage: ``cross_stitch3/`` for a cross-stitch network)."""
    return {
        f"{layer.kind}{layer.stage}/{out_task}<-{in_task}": value
        for layer in shares
        for out_task, row in zip(layer.tasks, layer.shares)
        for in_task, value in zip(layer.tasks, row)
    }


def share_colour(share: float) -> tuple[int, int, int]:
    """The heatmap colour of a share: white at 0 to dark blue at 1."""
    t = min(max(float(share), 0.0), 1.0)
    red, green, blue = (round(low + (high - low) * t) for low, high in zip(_LOW, _HIGH))
    return red, green, blue


def shares_heatmap(shares: Sequence[LayerShares], path: PathLike) -> None:
    """Write a PNG: one K x K panel per layer, side by side, each cell coloured by its share.

    Rows are output tasks, columns input tasks; each cell shows the share in percent. Written
    atomically (a crash leaves any earlier file intact).
    """
    if not shares:
        raise NddrError("no fusion layers to draw")
    font = _font()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    tasks = shares[0].tasks

    def width_of(text: str) -> int:
        left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        return int(right - left)

    line = max(draw.textbbox((0, 0), text, font=font)[3] for text in [*tasks, "NDDR 1%"]) + 8
    cell = max(CELL, *(width_of(task) + 12 for task in tasks))
    label_width = max(width_of(f"{task} <-") for task in tasks) + 10
    margin, gap = 8, 20
    panel_width = label_width + len(tasks) * cell
    block = _shares_entry(shares[0].kind).shares.block
    caption = f"rows: output task k <- columns: input task j; cell: ||{block}|| / sum_j ||{block}||"
    width = max(
        2 * margin + len(shares) * panel_width + (len(shares) - 1) * gap,
        2 * margin + width_of(caption),
    )
    height = 2 * margin + 3 * line + len(tasks) * cell + 4
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)

    def write(
        x: float, y: float, text: str, fill: tuple[int, int, int], right: bool = False
    ) -> None:
        """Text centred on (x, y), or ending at x when ``right``."""
        left, top, end, bottom = draw.textbbox((0, 0), text, font=font)
        start = x - end if right else x - (left + end) / 2
        draw.text((start, y - (top + bottom) / 2), text, fill=fill, font=font)

    black = (0, 0, 0)
    for index, layer in enumerate(shares):
        grid_left = margin + index * (panel_width + gap) + label_width
        grid_top = margin + 2 * line
        write(grid_left + len(tasks) * cell / 2, margin + line / 2, layer.name, black)
        for j, task in enumerate(layer.tasks):
            write(grid_left + (j + 0.5) * cell, margin + 1.5 * line, task, black)
        for k, (task, row) in enumerate(zip(layer.tasks, layer.shares)):
            top = grid_top + k * cell
            write(grid_left - 5, top + cell / 2, f"{task} <-", black, right=True)
            for j, value in enumerate(row):
                x = grid_left + j * cell
                box = (x, top, x + cell - 1, top + cell - 1)
                draw.rectangle(box, fill=share_colour(value), outline=(200, 200, 200))
                colour = (255, 255, 255) if value > 0.5 else black
                write(x + cell / 2, top + cell / 2, f"{100 * value:.1f}%", colour)
    write(margin + width_of(caption) / 2, height - margin - line / 2, caption, (90, 90, 90))
    with atomic_write(path) as temporary:
        image.save(temporary, format="PNG")


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font, at 13 px where this Pillow can scale it (10.1 and later)."""
    try:
        return ImageFont.load_default(size=13)
    except TypeError:
        return ImageFont.load_default()
