"""``nddr reproduce``: run one of the paper's tables (or a CPU check) and print it beside the paper."""

from __future__ import annotations

import argparse
import json

from nddr.errors import NddrError

HELP = (
    "run a table of the paper (table1..table7, tableS1), a .npy-layout or PASCAL-Context suite "
    "or a CPU check"
)
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    from nddr.experiments.recipes import DEFAULT_OUT
    from nddr.experiments.suites import SUITES

    suites = "; ".join(f"{suite.name}: {suite.title}" for suite in SUITES.values())
    parser = subparsers.add_parser(
        name,
        help=HELP,
        description="Train every run of a suite (single-task runs first: the fused networks "
        "start from them), reusing runs already finished under --out, then print the table with "
        "the published numbers (the paper's; LibMTL's for the .npy layouts; Vandenhende et al.'s "
        "survey for PASCAL-Context) beside ours and the "
        f"multi-task gain. Suites: {suites}.",
    )
    parser.add_argument("suite", metavar="SUITE", help=f"one of {', '.join(SUITES)}")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the runs in order without training"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="with --dry-run: print the plan as JSON, each run with its fully resolved config, "
        "run folder, row, state (train, resume, reuse) and the runs it starts from",
    )
    parser.add_argument(
        "--seeds", type=int, default=1, metavar="N", help="run seeds 0..N-1 (default 1)"
    )
    parser.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help=f"runs and tables (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run, repeatable (e.g. data.root=/data/nyuv2)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="ROW",
        help="run this row (and the single-task row), repeatable",
    )
    parser.add_argument(
        "--configs",
        metavar="DIR",
        help="a configs folder laid out as the package's (default: the package's nddr/configs)",
    )


def run(args: argparse.Namespace) -> int:
    from nddr.reproduce import format_plan, get_suite, plan, plan_document, run_suite

    get_suite(args.suite)
    if args.json and not args.dry_run:
        raise NddrError("--json prints a plan: add --dry-run (a run prints its markdown table)")
    selection = (args.suite, args.seeds, args.overrides, args.out)
    options = {"configs": args.configs, "only": args.only}
    if args.dry_run:
        specs = plan(*selection, **options)
        if args.json:
            print(json.dumps(plan_document(args.suite, specs), indent=2))
            return 0
        print(f"{args.suite}: {len(specs)} runs")
        print(format_plan(specs))
        return 0
    print(run_suite(*selection, **options))
    return 0
