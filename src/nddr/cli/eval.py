"""``nddr eval``: every task's metrics (paper definitions) of a trained checkpoint."""

from __future__ import annotations

import argparse
import json
import math

ENCODED_NOTE = (
    "encoded_*: angles between normals in their 8-bit PNG encoding (n + 1) / 2 * 255, as the "
    "released code measures them"
)


HELP = "evaluate a checkpoint on its dataset's test split"
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help=HELP,
        description="Evaluate a checkpoint (run folder, checkpoint folder or model .safetensors) "
        "on the test split of the dataset it was trained on.",
    )
    parser.add_argument("checkpoint")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--root", help="dataset folder, if it moved since training")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--batch-size", type=int, help="evaluation batch size")


def run(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    from nddr.data import build_dataset
    from nddr.data.transforms import JointTransform
    from nddr.errors import NddrError
    from nddr.tasks.metrics.normals import ENCODED_PREFIX
    from nddr.training import format_results, load_run
    from nddr.training.distributed import resolve_device
    from nddr.training.evaluate import evaluate

    if args.batch_size is not None and args.batch_size < 1:
        raise NddrError(f"--batch-size must be at least 1, got {args.batch_size}")
    network, tasks, config = load_run(args.checkpoint)
    data = config.data
    dataset = build_dataset(
        data.name,
        args.root or data.root,
        "test",
        tasks=[task.name for task in tasks],
        **data.options,
    )
    dataset.transform = JointTransform(dataset.targets, train=False)
    device = resolve_device(args.device)
    network.to(device)
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size if args.batch_size is not None else data.eval_batch_size,
        num_workers=data.workers,
    )
    results = evaluate(network, tasks, loader, device)
    _refuse_undefined(results, f"{data.name} test")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{data.name} test ({len(dataset)} samples)")
        print(format_results(results))
        if any(key.startswith(ENCODED_PREFIX) for values in results.values() for key in values):
            print(ENCODED_NOTE)
    return 0


def _refuse_undefined(results: dict[str, dict[str, float]], split: str) -> None:
    """A NaN metric (no valid target to measure) is an error, never a number printed with exit 0."""
    from nddr.errors import NddrError

    undefined = [
        f"{task}/{key}"
        for task, values in results.items()
        for key, value in values.items()
        if not math.isfinite(value)
    ]
    if undefined:
        raise NddrError(
            f"{', '.join(undefined)} came out NaN on {split}: the split holds no valid target for "
            "them; check it with nddr data check"
        )
