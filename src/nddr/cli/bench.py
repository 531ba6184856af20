"""``nddr bench``: speed, memory and FLOPs of every variant; or data pipeline headroom."""

from __future__ import annotations

import argparse
import json
import sys

from nddr.benchmark.rounds import MAX_ROUNDS, MIN_ROUNDS, PRECISION
from nddr.errors import NddrError
from nddr.models.fusion.registry import DEFAULT_VARIANT, SHORTCUT_SUFFIX, SINGLE_TASK, VARIANTS

HELP = "benchmark the network variants (time, memory, FLOPs) or the data pipeline"
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help=HELP,
        description="Median training-step and inference time, images/s, peak memory, parameters "
        "and FLOPs of each variant, timed side by side in one process, with NDDR-CNN's time / "
        "FLOP / memory ratios to the sum of the single-task networks. With --data: samples/s of "
        "an experiment's training pipeline against the images/s its network trains on.",
    )
    parser.add_argument(
        "items",
        nargs="*",
        metavar="CONFIG|key=value",
        help="with --data: a .yaml config first (default: the default experiment), then overrides",
    )
    parser.add_argument("--data", action="store_true", help="benchmark the data pipeline instead")
    parser.add_argument("--batches", type=int, default=20, help="--data: batches to time")
    parser.add_argument("--backbone", default="tiny", help="backbone name (see nddr models)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[*VARIANTS, DEFAULT_VARIANT + SHORTCUT_SUFFIX],
        help=f"{SINGLE_TASK} (one network per task), {', '.join(list(VARIANTS)[1:])}; any fusion "
        f"with the shortcut as NAME{SHORTCUT_SUFFIX} (default: all, and "
        f"{DEFAULT_VARIANT}{SHORTCUT_SUFFIX})",
    )
    parser.add_argument(
        "--execution",
        nargs="+",
        default=["columns"],
        choices=["columns", "grouped"],
        help="how K-column variants run; give both to compare",
    )
    parser.add_argument("--size", type=int, nargs=2, default=[161, 161], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=2, help="images per step")
    parser.add_argument("--tasks", type=int, default=2, help="K dense tasks")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile every network")
    parser.add_argument(
        "--repeats",
        type=int,
        help=f"timed rounds (default: at least {MIN_ROUNDS}, then on until every time ratio's "
        f"95%% interval is within --precision, at most --max-repeats)",
    )
    parser.add_argument(
        "--precision",
        type=float,
        default=PRECISION,
        help=f"relative half-width the time-ratio intervals must reach (default {PRECISION})",
    )
    parser.add_argument(
        "--max-repeats",
        type=int,
        default=MAX_ROUNDS,
        help=f"most timed rounds without --repeats (default {MAX_ROUNDS})",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip peak-memory processes")
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc malloc untuned (run.keep_freed_memory=false)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.data:
        return _run_data(args)
    if args.items:
        raise NddrError(f"unexpected {args.items[0]!r}: a config is read only with --data")
    from nddr.benchmark import Settings, format_report, plan_workloads, run_benchmark

    for flag, value in (
        ("--batch", args.batch),
        ("--repeats", 1 if args.repeats is None else args.repeats),
        ("--threads", 1 if args.threads is None else args.threads),
    ):
        if value < 1:
            raise NddrError(f"{flag} must be at least 1, got {value}")
    if not 0 < args.precision < 1:
        raise NddrError(f"--precision is a fraction such as 0.015, got {args.precision}")
    if args.max_repeats < MIN_ROUNDS:
        raise NddrError(f"--max-repeats must be at least {MIN_ROUNDS}, got {args.max_repeats}")
    settings = Settings(
        backbone=args.backbone,
        size=(args.size[0], args.size[1]),
        batch=args.batch,
        num_tasks=args.tasks,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        keep_freed_memory=not args.system_malloc,
        repeats=args.repeats,
        warmup=max(args.warmup, 0),
        threads=args.threads,
        precision=args.precision,
        max_repeats=args.max_repeats,
    )
    workloads = plan_workloads(args.variants, args.tasks, args.execution)
    report = run_benchmark(settings, workloads, not args.no_memory, _progress)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0


def _run_data(args: argparse.Namespace) -> int:
    from nddr.benchmark import format_pipeline_report, run_pipeline_benchmark
    from nddr.training.config import load_config

    items = list(args.items)
    path = items.pop(0) if items and "=" not in items[0] else None
    config = load_config(path, items)
    if args.batches < 1:
        raise NddrError(f"--batches must be at least 1, got {args.batches}")
    report = run_pipeline_benchmark(
        config, args.batches, max((args.repeats or MIN_ROUNDS) // 2, 3), _progress
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_pipeline_report(report))
    return 0
