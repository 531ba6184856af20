"""``nddr data``: convert (prepare), validate (check) and look at (show) datasets."""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from nddr.data import DATASETS, SPLITS, build_dataset
from nddr.errors import NddrError

SHOW_SPLIT = "train"
"""The split ``nddr data show`` draws from without ``--split``."""

HELP = "prepare, check and show datasets"
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(name, help=HELP, description=_catalogue())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    prepare = actions.add_parser(
        "prepare",
        help="convert NYUv2's official files",
        description="Convert the official NYUv2 files (labeled .mat, splits.mat, "
        "classMapping40.mat) into the NYUD-MT layout that `nddr data` and training read.",
    )
    prepare.add_argument("dataset", choices=["nyuv2"])
    prepare.add_argument("--labeled", required=True, help="nyu_depth_v2_labeled.mat (v7.3)")
    prepare.add_argument("--splits", required=True, help="splits.mat (trainNdxs, testNdxs)")
    prepare.add_argument("--mapping", required=True, help="classMapping40.mat (mapClass)")
    prepare.add_argument("--normals", help="folder of ground-truth normals (else from depth)")
    prepare.add_argument("--out", required=True, help="output folder")

    for action, text in (
        ("check", "validate every sample; print counts, class histograms, invalid pixels"),
        ("show", "write a grid of samples as PNG"),
    ):
        sub = actions.add_parser(action, help=text, description=text)
        sub.add_argument("dataset", metavar="NAME", help=", ".join(DATASETS))
        sub.add_argument(
            "root", nargs="?", help="dataset folder (built-in datasets: cache folder, optional)"
        )
        default_split = "both" if action == "check" else SHOW_SPLIT
        sub.add_argument("--split", choices=SPLITS, help=f"one split (default: {default_split})")
        sub.add_argument("--tasks", help="comma-separated targets to keep (default: all)")
        sub.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="dataset option, e.g. --set size=128 (repeatable)",
        )
        if action == "check":
            sub.add_argument("--json", action="store_true", help="print JSON")
            sub.add_argument("--limit", type=int, help="check only the first N samples per split")
        else:
            sub.add_argument("--out", required=True, help="PNG file to write")
            sub.add_argument("--num", type=int, default=6, help="samples (default 6)")


def _catalogue() -> str:
    lines = ["Datasets:"]
    width = max(map(len, DATASETS))
    for name, entry in DATASETS.items():
        built_in = " [built in]" if entry.builtin else ""
        lines.append(f"  {name:<{width}} {entry.description}{built_in}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.action == "prepare":
        return _prepare(args)
    options = _options(args.set)
    tasks = args.tasks.split(",") if args.tasks else None
    splits = [args.split] if args.split else list(SPLITS)
    if args.action == "check":
        return _check(args, splits, tasks, options)
    return _show(args, args.split or SHOW_SPLIT, tasks, options)


def _options(pairs: list[str]) -> dict[str, object]:
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise NddrError(f"--set {pair!r} is not KEY=VALUE, e.g. --set size=128")
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


def _progress(total: int, label: str):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="sample", file=sys.stderr, leave=False, disable=None)

    def update(done: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _check(args: argparse.Namespace, splits: list[str], tasks, options) -> int:
    from nddr.data.report import summarise

    if args.limit is not None and args.limit < 1:
        raise NddrError(f"--limit {args.limit}: check at least one sample per split")
    report = {"dataset": args.dataset, "root": args.root, "splits": {}}
    for split in splits:
        dataset = build_dataset(args.dataset, args.root, split, tasks=tasks, **options)
        if len(dataset) == 0:
            raise NddrError(f"{args.dataset} split {split!r} is empty: it lists no sample")
        total = len(dataset) if args.limit is None else min(args.limit, len(dataset))
        report["splits"][split] = summarise(
            dataset, args.limit, _progress(total, f"{args.dataset} {split}")
        )
    problems = [line for entry in report["splits"].values() for line in entry["problems"]]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if problems:
        print(f"nddr data check: {len(problems)} bad samples", file=sys.stderr)
        return 1
    return 0


def _print_report(report: dict) -> None:
    print(f"{report['dataset']}  {report['root'] or '(default cache)'}")
    for split, entry in report["splits"].items():
        checked = "" if entry["checked"] == entry["count"] else f" ({entry['checked']} checked)"
        print(f"\n{split}: {entry['count']} samples{checked}")
        for name, stats in entry["targets"].items():
            facts = []
            if "invalid_fraction" in stats:
                facts.append(f"invalid {100 * stats['invalid_fraction']:.2f}%")
            if stats.get("min") is not None:
                unit = " m" if stats["kind"] == "depth" else ""
                facts.append(f"range {stats['min']:.3g}..{stats['max']:.3g}{unit}")
            print(f"  {name} ({stats['kind']})" + (": " + ", ".join(facts) if facts else ""))
            if "histogram" in stats:
                _print_histogram(stats)
        if "source" in entry:
            print("  source: " + _describe_source(entry["source"]))
        for line in entry["problems"][:20]:
            print(f"  BAD {line}")
        if len(entry["problems"]) > 20:
            print(f"  ... and {len(entry['problems']) - 20} more")


def _print_histogram(stats: dict) -> None:
    """Class shares, eight per line; ages in 10-year bins."""
    import numpy as np

    histogram = np.asarray(stats["histogram"])
    if stats["kind"] == "age":
        bins = np.add.reduceat(histogram, np.arange(0, len(histogram), 10))
        names = [f"{start}-{start + 9}" for start in range(0, len(histogram), 10)]
        histogram = bins
    else:
        names = stats.get("class_names") or [str(label) for label in range(len(histogram))]
    share = 100 * histogram / max(histogram.sum(), 1)
    cells = [f"{name}:{value:.1f}%" for name, value in zip(names, share)]
    for start in range(0, len(cells), 8):
        print("    " + "  ".join(cells[start : start + 8]))


def _describe_source(source: dict) -> str:
    """A dataset's own counts, e.g. IMDB-WIKI's filter: nested dicts shown as key count."""
    parts = []
    for key, value in source.items():
        if isinstance(value, dict):
            value = ", ".join(f"{name} {count}" for name, count in value.items() if count)
            value = f"({value or 'none'})"
        parts.append(f"{key} {value}")
    return ", ".join(parts)


def _show(args: argparse.Namespace, split: str, tasks, options) -> int:
    import numpy as np

    from nddr.data.files import write_png
    from nddr.data.report import sample_grid

    dataset = build_dataset(args.dataset, args.root, split, tasks=tasks, **options)
    if len(dataset) == 0:
        raise NddrError(f"{args.dataset} split {split!r} is empty")
    if args.num < 1:
        raise NddrError(f"--num {args.num}: show at least one sample")
    indices = np.linspace(0, len(dataset) - 1, min(args.num, len(dataset))).round().astype(int)
    image = sample_grid(dataset, indices.tolist())
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise NddrError(f"--out {str(out)!r} must end in .png")
    try:
        write_png(np.asarray(image), out)
    except OSError as error:
        raise NddrError(
            f"cannot write --out {str(out)!r} ({error.strerror or error}): pass a writable path"
        ) from None
    print(f"wrote {out} ({len(indices)} samples of {args.dataset} {split})")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from nddr.data.nyuv2_prepare import prepare_nyuv2

    progress = None

    def report(done: int, total: int) -> None:
        nonlocal progress
        if progress is None:
            progress = _progress(total, "nyuv2 prepare")
        progress(done)

    counts = prepare_nyuv2(
        args.labeled, args.splits, args.mapping, args.out, normals=args.normals, progress=report
    )
    print(
        f"wrote {counts['images']} images to {args.out}: {counts['train']} train, "
        f"{counts['val']} test; normals computed from depth for {counts['normals_from_depth']}"
    )
    return 0
