"""``nddr models``: the backbones and variants, and what fusion adds in parameters."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nddr.errors import NddrError
from nddr.models.fusion.registry import fusion_entry, fusion_names

if TYPE_CHECKING:
    from nddr.models.heads import HeadSpec

# The tasks used for counting: NYUv2's segmentation (40 classes), normals and depth, then generic.
_COUNT_TASKS = (("segmentation", 40), ("normals", 3), ("depth", 1))


HELP = "list backbones and variants; --params counts parameters"
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help=HELP,
        description="List backbones and network variants. With --params BACKBONE, print per "
        "variant the total parameters and what fusion adds (count, and % of the K columns).",
    )
    parser.add_argument("--params", metavar="BACKBONE", help="count parameters for this backbone")
    parser.add_argument(
        "--tasks", type=int, default=2, metavar="K", help="number of tasks (default 2)"
    )


def run(args: argparse.Namespace) -> int:
    if args.params:
        print_parameter_table(args.params, args.tasks)
    else:
        print_catalogue()
    return 0


def count_tasks(num_tasks: int) -> list[HeadSpec]:
    """The K dense tasks the table is counted with."""
    from nddr.models.heads import HeadSpec

    named = [HeadSpec(name, size) for name, size in _COUNT_TASKS]
    return (named + [HeadSpec(f"task{k}", 10) for k in range(len(named), num_tasks)])[:num_tasks]


def print_catalogue() -> None:
    import torch

    from nddr.models import VARIANTS
    from nddr.models.backbones import BACKBONES, TIMM_PREFIX, build_backbone

    print("Backbones (parameter counts: nddr models --params NAME):")
    with torch.device("meta"):
        for name in BACKBONES:
            backbone = build_backbone(name)
            widths = "/".join(map(str, backbone.channels))
            print(
                f"  {name:<12} {backbone.num_stages} stages, widths {widths}, "
                f"output stride {backbone.output_stride}, dense head {backbone.dense_head}"
            )
    print(
        f"  {TIMM_PREFIX + 'MODEL':<12} a timm CNN cut at its feature_info taps: ResNet, ConvNeXt, "
        "RegNet, EfficientNet, MobileNet, ... (pip install 'nddr[timm]')"
    )
    print("  your own    StagedBackbone.from_modules([...]) (see the README)")
    print("Variants:")
    for name, description in VARIANTS.items():
        print(f"  {name:<13}{description}")
    print(
        "  any of them with shortcut=True: every stage's output routed to the heads (NDDR-CNN-Shortcut)"
    )


def print_parameter_table(backbone: str, num_tasks: int) -> None:
    """Per variant: total parameters and what fusion (and the shortcut) adds, counted on meta tensors."""
    import torch

    from nddr.models import VARIANTS, build_network

    if num_tasks < 1:
        raise NddrError(f"--tasks must be at least 1, got {num_tasks}")
    tasks = count_tasks(num_tasks)
    rows = []
    with torch.device("meta"):
        for variant in VARIANTS:
            for shortcut in (False, True):
                network = build_network(backbone, tasks, variant, shortcut=shortcut)
                rows.append(
                    (variant + ("+shortcut" if shortcut else ""), network.parameter_summary())
                )
        source = network.columns[0]
    task_text = ", ".join(f"{t.name} ({t.out_channels})" for t in tasks)
    print(f"{backbone}, {num_tasks} task(s): {task_text}; parameters counted without data")
    header = (
        f"{'variant':<23}{'total':>13}{'columns':>13}{'heads':>12}"
        f"{'stage fusion':>14}{'head input':>12}{'added':>12}{'% of columns':>14}"
    )
    print(header)
    print("-" * len(header))
    for label, summary in rows:
        added = summary["fusion"] + summary["head_inputs"]
        print(
            f"{label:<23}{summary['total']:>13,}{summary['columns']:>13,}{summary['heads']:>12,}"
            f"{summary['fusion']:>14,}{summary['head_inputs']:>12,}{added:>12,}"
            f"{100.0 * added / summary['columns']:>13.2f}%"
        )
    entries = [fusion_entry(name) for name in fusion_names()]
    titles = " / ".join(entry.title for entry in entries)
    own = ", ".join(
        f"{entry.title}'s {entry.head_input_class().__name__}"
        for entry in entries
        if entry.head_input is not None
    )
    print(f"stage fusion: the {titles} layers after every stage; head input: the shortcut")
    print(f"(or a fusion's own: {own}); added = both, also as % of the K columns.")
    per_task = sum(width * width * num_tasks for width in source.channels)
    line = f"NDDR weights of one task (the 1x1 convs, no BN): {per_task:,}"
    if source.source_parameters:
        line += (
            f" = {100.0 * per_task / source.source_parameters:.2f}% of the "
            f"{source.source_parameters:,} parameters of the network {backbone} is cut from, "
            "ImageNet classifier included"
        )
    print(line)
