"""``nddr inspect``: what a trained network's fusion layers learned (paper §3.1).

Prints, per fusion layer (NDDR, cross-stitch or sluice), the share of each task's output drawn
from each task's input (block norms of the layer's weights, see :mod:`nddr.models.analysis`) and draws
them as a PNG heatmap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nddr.errors import NddrError

HEATMAP_NAME = "nddr_shares.png"


HELP = "show what the fusion layers learned: each task's share of each task's features"
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help=HELP,
        description="Per fusion layer (NDDR, cross-stitch or sluice) of a trained network, the "
        "share of each task's output drawn from each task's input (Frobenius norms of the "
        "task-to-task blocks of its weights or alphas), as a table and a PNG heatmap.",
    )
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a model .safetensors written by nddr, a checkpoint folder, or a run folder (its "
        "newest checkpoint)",
    )
    parser.add_argument(
        "--out", help=f"heatmap PNG to write (default: {HEATMAP_NAME} beside the model file)"
    )
    parser.add_argument("--no-heatmap", action="store_true", help="do not write the heatmap")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument(
        "--fold-bn",
        action="store_true",
        help="fold each output channel's batch-norm scale into the weights first (NDDR layers)",
    )


def run(args: argparse.Namespace) -> int:
    from nddr.models.analysis import format_shares, fusion_shares, shares_heatmap
    from nddr.training.load import find_model_file, load_network_file

    model_file = find_model_file(args.checkpoint)
    network = load_network_file(model_file)
    try:
        shares = fusion_shares(network, fold_bn=args.fold_bn)
    except NddrError as error:
        raise NddrError(f"{model_file}: {error}") from None
    heatmap = None
    if not args.no_heatmap:
        heatmap = Path(args.out) if args.out else model_file.parent / HEATMAP_NAME
        try:
            shares_heatmap(shares, heatmap)
        except OSError as error:
            raise NddrError(
                f"cannot write the heatmap to {heatmap} ({error.strerror or error}): "
                "pass --out PATH somewhere writable, or --no-heatmap"
            ) from None
    if args.json:
        report = {
            "checkpoint": str(model_file),
            "heatmap": str(heatmap) if heatmap else None,
            "layers": [layer.as_dict() for layer in shares],
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"{model_file}: tasks {', '.join(shares[0].tasks)}")
        print(format_shares(shares))
        if heatmap:
            print(f"heatmap written to {heatmap}")
    return 0
