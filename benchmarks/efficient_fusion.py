"""Efficient fusion trade-off: what NDDR, grouped NDDR and low-rank NDDR add on wide backbones,
against their Delta_m on the CPU suites.

For each setting (NDDR; grouped NDDR at G groups; low-rank NDDR at rank r = f C) it counts, on
meta tensors, the training FLOPs (forward + backward) of the fused network over the sum of the
single-task networks, at ``nddr bench``'s defaults (2 dense tasks, batch 2 at 161x161), and the
fusion layers' parameters as a % of the K columns (``nddr models --params``'s last column). With
``--runs`` it reads the finished runs of ``nddr reproduce cpu-scenes`` / ``cpu-digits`` from that
folder and gives each fused row's Delta_m (per metric, against the single-task row's mean) as
mean ± std over the seeds found. ``--plot`` draws both as a PNG (needs matplotlib, not a
dependency of nddr: ``pip install matplotlib``).

    python benchmarks/efficient_fusion.py [--backbones resnet50 resnet101] [--runs runs]
        [--plot docs/images/efficient_fusion.png]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nddr.benchmark import Settings, count_flops, plan_workloads
from nddr.benchmark.network import bench_targets, network_flops, workload_targets
from nddr.experiments.planning import plan
from nddr.experiments.suites import SINGLE_ROW, get_suite, higher_is_better
from nddr.models import build_network
from nddr.tasks import build_tasks
from nddr.tasks.metrics import multi_task_gain
from nddr.training.pipeline import finished


@dataclass(frozen=True)
class Setting:
    """One fusion configuration of the sweep."""

    label: str
    variant: str
    options: Mapping[str, object] = field(default_factory=dict)
    suite_row: str | None = None  # the CPU suites' row with these options, where a suite has it


SETTINGS = (
    Setting("NDDR", "nddr", {}, "nddr"),
    Setting("grouped G=2", "nddr_grouped", {"groups": 2}),
    Setting(
        "grouped G=4, no floor",
        "nddr_grouped",
        {"groups": 4, "min_group_width": 1},
        "nddr_grouped_g4",
    ),
    Setting(
        "grouped G=8, no floor",
        "nddr_grouped",
        {"groups": 8, "min_group_width": 1},
        "nddr_grouped_nofloor",
    ),
    Setting("grouped G=8", "nddr_grouped", {"groups": 8}, "nddr_grouped"),
    Setting("grouped G=16", "nddr_grouped", {"groups": 16}),
    Setting(
        "low-rank r=C/4, no floor",
        "nddr_lowrank",
        {"rank_fraction": 0.25, "min_rank": 1},
        "nddr_lowrank_r4",
    ),
    Setting(
        "low-rank r=C/8, no floor",
        "nddr_lowrank",
        {"rank_fraction": 0.125, "min_rank": 1},
        "nddr_lowrank_nofloor",
    ),
    Setting("low-rank r=C/8", "nddr_lowrank", {"rank_fraction": 0.125}, "nddr_lowrank"),
    Setting("low-rank r=C/16", "nddr_lowrank", {"rank_fraction": 0.0625}),
)
"""The sweep: NDDR, grouped NDDR over G, low-rank NDDR over r / C (defaults: G = 8 with at least
32 channels per task and group, r = C / 8 with r >= 32; "no floor" drops that least width)."""

SUITES = ("cpu-scenes", "cpu-digits")


def fused_costs(backbone: str, setting: Setting, settings: Settings) -> tuple[int, int, int]:
    """Training FLOPs, parameters of the fusion layers and of the K columns, for ``setting``."""
    names = tuple(bench_targets(settings.num_tasks))
    tasks = build_tasks(workload_targets(names, settings.num_tasks))
    with torch.device("meta"):
        network = build_network(
            backbone,
            [task.head_spec() for task in tasks],
            setting.variant,
            fusion_options=dict(setting.options),
        )
        flops, _ = network_flops(network, torch.empty(settings.batch, 3, *settings.size))
    fusion = sum(p.numel() for p in network.fusions.parameters())
    columns = sum(p.numel() for p in network.columns.parameters())
    return flops, fusion, columns


def cost_rows(backbones: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """backbone -> setting label -> (FLOP ratio to the single-task sum, fusion params % of columns)."""
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for backbone in backbones:
        settings = Settings(backbone=backbone)
        single = sum(
            count_flops(workload, settings)[0]
            for workload in plan_workloads(["single"], settings.num_tasks)
        )
        rows[backbone] = {}
        for setting in SETTINGS:
            flops, fusion, columns = fused_costs(backbone, setting, settings)
            rows[backbone][setting.label] = (flops / single, 100 * fusion / columns)
    return rows


def suite_gains(suite_name: str, runs: Path) -> dict[str, tuple[float, float | None, int]]:
    """Fused row -> (mean, std, seeds) of its per-seed Delta_m (per metric, against the
    single-task row's mean), over the seeds whose runs in ``runs`` have finished."""
    suite = get_suite(suite_name)
    directions = higher_is_better(suite, gain_only=True)
    labels = {row.label for row in suite.rows}
    rows = [SINGLE_ROW, *(s.suite_row for s in SETTINGS if s.suite_row in labels)]
    per_row: dict[str, list[dict[str, dict[str, float]]]] = {row: [] for row in rows}
    for seed in range(10):
        specs = [spec for spec in plan(suite_name, [seed], out=runs, only=rows[1:])]
        for row in rows:
            merged: dict[str, dict[str, float]] = {}
            outcomes = [finished(spec) for spec in specs if spec.row == row]
            if not outcomes or any(outcome is None for outcome in outcomes):
                continue
            for outcome in outcomes:
                for task, metrics in outcome.results.items():
                    merged.setdefault(task, {}).update(metrics)
            per_row[row].append(merged)
    if not per_row[SINGLE_ROW]:
        return {}
    single = {
        task: {
            metric: statistics.fmean(seed[task][metric] for seed in per_row[SINGLE_ROW])
            for metric in metrics
        }
        for task, metrics in directions.items()
    }
    gains = {}
    for row in rows[1:]:
        values = [
            multi_task_gain(seed, single, directions, convention="per_metric")
            for seed in per_row[row]
        ]
        if values:
            std = statistics.stdev(values) if len(values) > 1 else None
            gains[row] = (statistics.fmean(values), std, len(values))
    return gains


def markdown(costs: Mapping[str, Mapping[str, tuple[float, float]]], gains: Mapping) -> str:
    """The trade-off table: per setting its FLOP ratio and params on each backbone, and Delta_m."""
    backbones = list(costs)
    header = ["setting"]
    header += [f"{b} FLOP ratio" for b in backbones] + [f"{b} params" for b in backbones]
    header += [f"{suite} Δm (metrics)" for suite in gains]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for setting in SETTINGS if costs else [s for s in SETTINGS if s.suite_row]:
        cells = [setting.label]
        cells += [f"{costs[b][setting.label][0]:.3f}" for b in backbones]
        cells += [f"{costs[b][setting.label][1]:.2f}%" for b in backbones]
        for suite_gains_ in gains.values():
            gain = suite_gains_.get(setting.suite_row) if setting.suite_row else None
            if gain is None:
                cells.append("-")
            else:
                mean, std, seeds = gain
                spread = "" if std is None else f" ± {std:.2f}"
                cells.append(f"{mean:+.2f}{spread} ({seeds} seed{'s' if seeds > 1 else ''})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(costs: Mapping, gains: Mapping, path: Path) -> None:
    """Left: added training FLOPs per setting and backbone, with the 10 % budget; then per CPU
    suite the measured rows' Delta_m (mean ± std over seeds)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install matplotlib") from None
    figure, axes = plt.subplots(1, 1 + len(gains), figsize=(5.5 + 3.5 * len(gains), 4.2))
    left, *right = axes if gains else [axes]
    labels = [setting.label for setting in SETTINGS]
    width = 0.8 / len(costs)
    for index, (backbone, rows) in enumerate(costs.items()):
        added = [100 * (rows[label][0] - 1) for label in labels]
        positions = [i + (index - (len(costs) - 1) / 2) * width for i in range(len(labels))]
        left.bar(positions, added, width, label=backbone)
    left.axhline(10, color="black", linestyle="--", linewidth=1, label="10 % budget")
    left.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    left.set_ylabel("training FLOPs added to the K columns (%)")
    left.set_title("Cost (batch 2, 161x161)")
    left.legend()
    for axis, (suite, rows) in zip(right, gains.items()):
        measured = [setting for setting in SETTINGS if setting.suite_row in rows]
        means = [rows[s.suite_row][0] for s in measured]
        stds = [rows[s.suite_row][1] or 0 for s in measured]
        if "nddr" in rows:
            mean, std, _ = rows["nddr"]
            axis.axhspan(
                mean - (std or 0),
                mean + (std or 0),
                color="tab:blue",
                alpha=0.15,
                label="NDDR ± 1 std",
            )
            axis.legend(loc="lower right")
        axis.bar(range(len(measured)), means, 0.6, yerr=stds, capsize=4, color="tab:green")
        low = min(m - s for m, s in zip(means, stds))
        high = max(m + s for m, s in zip(means, stds))
        axis.set_ylim(low - 0.5 * (high - low), high + 0.2 * (high - low))
        axis.set_xticks(range(len(measured)), [s.label for s in measured], rotation=35, ha="right")
        axis.set_ylabel("Δm (metrics) against single-task (%)")
        axis.set_title(f"{suite} (mean ± std over seeds)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbones",
        nargs="*",
        default=["resnet50", "resnet101", "tiny"],
        help="none: Delta_m only (tiny: the CPU suites' backbone)",
    )
    parser.add_argument("--runs", type=Path, help="the --out folder of nddr reproduce")
    parser.add_argument("--plot", type=Path, help="write the trade-off plot to this PNG")
    args = parser.parse_args()
    costs = cost_rows(args.backbones)
    gains = {suite: suite_gains(suite, args.runs) for suite in SUITES} if args.runs else {}
    print(markdown(costs, gains))
    if args.plot:
        if not costs:
            raise SystemExit("--plot needs at least one of --backbones")
        plot(costs, gains, args.plot)


if __name__ == "__main__":
    main()
