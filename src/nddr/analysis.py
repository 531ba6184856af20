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

:func:`fusion_shares` computes them for every fusion kind, :func:`format_shares` prints them,
:func:`shares_heatmap` draws them (PNG, PIL only) and :func:`shares_record` flattens them to
scalars for training logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn

from nddr.errors import NddrError
from nddr.fusion import NDDR, CrossStitch, Sluice
from nddr.io import PathLike, atomic_write
from nddr.network.model import MultiTaskNetwork

# Heatmap colours: white (share 0) to dark blue (share 1).
_LOW = (255, 255, 255)
_HIGH = (8, 48, 107)
CELL = 56  # smallest side of a heatmap cell, in pixels


@dataclass(frozen=True)
class FusionKind:
    """How one kind of fusion layer is named and what its shares are computed from."""

    title: str  # layer names: "NDDR 3", "Cross-stitch 3"
    basis: str  # what the shares are ratios of
    block: str  # the block symbol in the heatmap caption


KINDS = {
    "nddr": FusionKind("NDDR", "block norms of the 1x1 weights", "W_kj"),
    "cross_stitch": FusionKind("Cross-stitch", "norms of the alphas of each task pair", "a_kj"),
    "sluice": FusionKind(
        "Sluice", "norms of the alpha blocks between the tasks' subspaces", "alpha_kj"
    ),
}
"""Fusion kind (the network variant; also the training-log prefix) -> its names."""


@dataclass(frozen=True)
class LayerShares:
    """The shares of one fusion layer.

    Attributes:
        stage: The stage the layer fuses (1-based: "NDDR 1" follows the first stage).
        channels: C, each task's channels at this stage.
        tasks: The K task names, in the network's order.
        shares: K x K; ``shares[k][j]`` is the share of task k's output drawn from task j's input
            (rows: output task, columns: input task; every row sums to 1).
        kind: The fusion kind, a key of :data:`KINDS`: ``"nddr"``, ``"cross_stitch"`` or
            ``"sluice"``.
    """

    stage: int
    channels: int
    tasks: tuple[str, ...]
    shares: tuple[tuple[float, ...], ...]
    kind: str = "nddr"

    @property
    def name(self) -> str:
        return f"{KINDS[self.kind].title} {self.stage}"

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
    """Per fusion layer (NDDR, cross-stitch or sluice), the share of each task's output drawn
    from each task's input.

    ``share_kj = ||W_kj||_F / sum_j' ||W_kj'||_F`` with W_kj the C x C block of the layer's
    equivalent 1x1 weights that maps task j's input channels to task k's output channels (see the
    module docstring for cross-stitch and sluice). A row whose blocks are all zero (an output that
    ignores every input) gets shares of 0.

    With ``fold_bn`` the batch norm's scale gamma / sqrt(var + eps) of each output channel of an
    NDDR layer is folded into its row of weights first, so the shares describe the normalised
    output. The scale is shared by all input blocks of an output channel: a scale common to all of
    task k's channels leaves its shares unchanged, and only scales that differ between task k's
    channels (weighting some output channels more than others) can move them. Cross-stitch and
    sluice layers have no batch norm, so ``fold_bn`` is refused for them.

    ``network`` is a :class:`~nddr.MultiTaskNetwork` (or a wrapper with it as ``.module``, as
    DistributedDataParallel gives). Raises :class:`NddrError` if it has no fusion layers.
    """
    network = _unwrap(network)
    layers = []
    with torch.no_grad():
        for stage, fusion in enumerate(network.fusions, start=1):
            kind = _fusion_kind(fusion)
            if kind is None:
                continue
            if fold_bn and kind != "nddr":
                raise NddrError(
                    f"{_describe(network)}: fold_bn (--fold-bn) folds the batch norm of NDDR "
                    f"layers, and {KINDS[kind].title} layers have none: leave it off"
                )
            norms = _block_norms(fusion, fold_bn)
            totals = norms.sum(dim=1, keepdim=True)
            shares = norms / torch.where(totals > 0, totals, torch.ones_like(totals))
            layers.append(
                LayerShares(
                    stage=stage,
                    channels=fusion.channels,
                    tasks=tuple(network.task_names),
                    shares=tuple(tuple(float(value) for value in row) for row in shares),
                    kind=kind,
                )
            )
    if not layers:
        raise NddrError(
            f"{_describe(network)} has no fusion layers: the shares need a network of variant "
            "'nddr', 'cross_stitch' or 'sluice'"
        )
    return layers


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


def _fusion_kind(fusion: nn.Module) -> str | None:
    """The :data:`KINDS` key of a fusion layer; None for a stage without one."""
    for kind, layer_type in (("nddr", NDDR), ("cross_stitch", CrossStitch), ("sluice", Sluice)):
        if isinstance(fusion, layer_type):
            return kind
    return None


def _block_norms(layer: nn.Module, fold_bn: bool) -> Tensor:
    """[output task, input task]: the norm of each task-to-task block of the layer's weights, up
    to a factor common to all blocks."""
    k = layer.num_tasks
    if isinstance(layer, NDDR):
        c = layer.channels
        weight = layer.conv.weight.detach().to(torch.float64).cpu().reshape(k, c, k, c)
        if fold_bn:
            weight = weight * _bn_scale(layer.bn).view(k, c, 1, 1)
        return torch.linalg.vector_norm(weight, dim=(1, 3))
    if isinstance(layer, CrossStitch):
        alphas = layer.weight.detach().to(torch.float64).cpu()
        if not layer.per_channel:
            alphas = alphas[:, :, None].expand(-1, -1, layer.channels)
        return torch.linalg.vector_norm(alphas, dim=2)
    m = layer.num_subspaces
    alpha = layer.alpha.detach().to(torch.float64).cpu().reshape(k, m, k, m)
    return torch.linalg.vector_norm(alpha, dim=(1, 3))


def _bn_scale(bn: nn.BatchNorm2d) -> Tensor:
    """gamma / sqrt(running var + eps) per channel (1 where the batch norm lacks either)."""
    ones = torch.ones(bn.num_features, dtype=torch.float64)
    gamma = bn.weight.detach().to(torch.float64).cpu() if bn.weight is not None else ones
    var = bn.running_var.detach().to(torch.float64).cpu() if bn.running_var is not None else ones
    return gamma / torch.sqrt(var + bn.eps)


def format_shares(shares: Sequence[LayerShares]) -> str:
    """A text table per layer: rows "task <-", columns the input tasks, shares in percent."""
    kind = KINDS[shares[0].kind] if shares else KINDS["nddr"]
    lines = [
        f"Share of each task's {kind.title} output drawn from each task's input ({kind.basis})"
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
    prefix ``cross_stitch3/``, ``sluice3/`` for the other fusion kinds)."""
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
    block = KINDS[shares[0].kind].block
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
