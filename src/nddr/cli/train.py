"""``nddr train``: train one experiment (a YAML config and ``key=value`` overrides).

SIGTERM / SIGINT stop it after the current step with a checkpoint: one line on stderr says how to
resume, and the exit status is 128 + the signal number (143, 130).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nddr.errors import NddrError
from nddr.training.config import Config, load_config

HELP = "train an experiment (default: NDDR-CNN, tiny backbone, built-in Scenes)"
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help=HELP,
        description="Train an experiment from a YAML config with key=value overrides "
        "(e.g. optim.steps=200 model.variant=cross_stitch). With no config: NDDR-CNN on the tiny "
        "backbone and built-in Scenes (segmentation + normals). Multi-GPU: the same command under "
        "`torchrun --nproc_per_node N -m nddr train ...`.",
    )
    parser.add_argument(
        "items",
        nargs="*",
        metavar="CONFIG|key=value",
        help="a .yaml config (a path, or a packaged config by name, e.g. nyuv2/table4/nddr) "
        "first, then overrides",
    )
    parser.add_argument(
        "--config-help", action="store_true", help="print every config key and exit"
    )
    parser.add_argument(
        "--from-single-task",
        action="store_true",
        help="the paper's pipeline (§4.3): train each task's single-task network first, then this "
        "network initialised from them",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in this folder exactly where its last checkpoint left it",
    )


def run(args: argparse.Namespace) -> int:
    if args.config_help:
        from nddr.training.config import config_reference

        print(config_reference())
        return 0
    from nddr.training import format_results
    from nddr.training.preemption import Preempted

    items = list(args.items)
    path = items.pop(0) if items and "=" not in items[0] else None
    if args.resume:
        if path is not None:
            raise NddrError("--resume takes the run folder's own config.yaml: pass overrides only")
        from nddr.training.run_folder import CONFIG_FILE

        config_file = Path(args.resume) / CONFIG_FILE
        if not config_file.is_file():
            raise NddrError(f"--resume {args.resume!r}: no {CONFIG_FILE} there; pass a run folder")
        config = load_config(config_file, items)
    else:
        from nddr.experiments.recipes import resolve_config

        config = load_config(resolve_config(path) if path is not None else None, items)
    start = time.perf_counter()
    try:
        summary = _train(config, args)
    except Preempted as stop:
        if stop.is_main:
            print(f"nddr train: {stop}", file=sys.stderr)
        return stop.exit_status
    minutes = (time.perf_counter() - start) / 60
    if not summary["is_main"]:
        return 0
    speed = summary.get("images_per_s")
    throughput = f", {speed:.1f} images/s in training steps" if speed else ""
    print(
        f"\n{config.name}: {summary['step']} steps in {minutes:.1f} min{throughput}; test metrics:"
    )
    print(format_results(summary["results"]))
    print(f"\nrun folder   {summary['run_dir']}")
    print(f"checkpoint   {summary['checkpoint']}")
    print(
        f"logs         {summary['run_dir']}/log.jsonl, tensorboard --logdir {summary['run_dir']}/tensorboard"
    )
    return 0


def _train(config: Config, args: argparse.Namespace) -> dict:
    """Train ``config`` (resumed, or as the paper's pipeline) and return its summary."""
    from nddr.training import train
    from nddr.training.pipeline import run_pipeline

    if not args.from_single_task:
        if args.resume:
            return train(config, resume=True, run_dir=args.resume)
        return train(config)
    if args.resume:
        raise NddrError("--from-single-task reruns only unfinished runs: drop --resume")
    return run_pipeline(config)
