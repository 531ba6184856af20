"""The markdown table of a suite: ours beside the paper's numbers, and Delta_m in both
conventions (:mod:`nddr.tasks.metrics.gain`) against the single-task row, for the paper's numbers and
for ours, over the same metrics."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nddr.errors import NddrError
from nddr.experiments.paper import (
    DELTA_COLUMN,
    as_results,
    paper_numbers,
    published_rows,
    published_sources,
)
from nddr.experiments.suites import SINGLE_ROW, Column, Suite, higher_is_better, selected_rows
from nddr.tasks.metrics import GAIN_CONVENTIONS, UNITS, multi_task_gain
from nddr.tasks.metrics.normals import ENCODED_PREFIX
from nddr.training.pipeline import Outcome, Results, RunSpec

MISSING = "-"
"""A table cell without a number."""

_ENCODED_NOTE = (
    "Normals: the paper's N figures stand beside our (enc) angles, measured between prediction "
    "and ground truth both encoded as the released code stores normals, (n + 1) / 2 x 255, and "
    "L2-normalised without decoding (its loss and metric do this; the paper's figures are most "
    "likely these). The (true) columns are the angles between the unit normals themselves: the "
    "paper has no number for them and Δm leaves them out."
)


def _merged(specs: Iterable[RunSpec], outcomes: Mapping[Path, Outcome]) -> Results | None:
    """One row's results at one seed: its runs' results merged (``None`` if one is missing)."""
    merged: Results = {}
    for spec in specs:
        outcome = outcomes.get(spec.run_dir)
        if outcome is None:
            return None
        for task, metrics in outcome.results.items():
            merged.setdefault(task, {}).update(metrics)
    return merged


def _value(results: Results, column: Column) -> float | None:
    value = results.get(column.task, {}).get(column.metric)
    return None if value is None or math.isnan(value) else value


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


GAINS = (("metrics", "per_metric"), ("tasks", "per_task"))
"""The Delta_m columns: header label and :func:`nddr.tasks.metrics.multi_task_gain` convention."""


def _gain(
    row: Mapping[str, Mapping[str, float]] | None,
    single: Mapping[str, Mapping[str, float]] | None,
    directions: Mapping[str, Mapping[str, bool]],
    convention: str,
) -> str:
    if not row or not single:
        return MISSING
    try:
        return f"{multi_task_gain(row, single, directions, convention=convention):+.2f}"
    except NddrError:
        return MISSING


def format_table(
    suite: Suite,
    specs: Sequence[RunSpec],
    outcomes: Mapping[Path, Outcome],
    seeds: Sequence[int],
    only: Sequence[str] | None = None,
) -> str:
    """The markdown table of a suite: per row and metric the paper's number and ours (mean ± std
    over seeds, in the paper's units), and Delta_m against the single-task row in both
    conventions (``Δm (metrics)``, ``Δm (tasks)``) over the columns that count in it."""
    directions = higher_is_better(suite)
    gain_directions = higher_is_better(suite, gain_only=True)
    arrows = {c: "↑" if directions[c.task][c.metric] else "↓" for c in suite.columns}
    paper = paper_numbers(suite)
    with_paper = bool(paper) or suite.paper_absent is not None
    theirs = "published" if suite.published else "paper"
    header = ["row"]
    for column in suite.columns:
        name = f"{column.name} {arrows[column]}"
        if not with_paper:
            header.append(name)
        elif column.paper is None:
            header.append(f"{name} ours")
        else:
            header += [f"{name} {theirs}", f"{name} ours"]
    for label, _ in GAINS:
        header += (
            [f"Δm ({label}) {theirs}", f"Δm ({label}) ours"] if with_paper else [f"Δm ({label})"]
        )
    rows = selected_rows(suite, only)
    ours: dict[str, Results] = {}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cells_by_row = []
    missing = []
    for row in rows:
        per_seed = []
        for seed in seeds:
            merged = _merged([s for s in specs if s.row == row.label and s.seed == seed], outcomes)
            if merged is None:
                missing.append(f"{row.label} seed {seed}")
            else:
                per_seed.append(merged)
        cells = [row.label]
        means: Results = {}
        for column in suite.columns:
            values = [v for r in per_seed if (v := _value(r, column)) is not None]
            if with_paper and column.paper is not None:
                number = paper.get(row.label, {}).get(column.name)
                cells.append(MISSING if number is None else f"{number:.1f}")
            if not values:
                cells.append(MISSING)
                continue
            mean, std = _mean_std(values)
            means.setdefault(column.task, {})[column.metric] = mean
            cells.append(f"{mean:.1f}" + ("" if std is None else f" ± {std:.2f}"))
        ours[row.label] = means
        cells_by_row.append(cells)
    for row, cells in zip(rows, cells_by_row):
        for _, convention in GAINS:
            if with_paper:
                published = as_results(suite, paper.get(row.label))
                baseline = as_results(suite, paper.get(SINGLE_ROW))
                cells.append(_gain(published, baseline, gain_directions, convention))
            cells.append(
                _gain(ours.get(row.label), ours.get(SINGLE_ROW), gain_directions, convention)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*_preamble(suite, seeds, with_paper), *lines, *_footer(missing)])


def _preamble(suite: Suite, seeds: Sequence[int], with_paper: bool) -> list[str]:
    seed_text = ", ".join(map(str, seeds))
    spread = "mean ± sample std over" if len(seeds) > 1 else "one run,"
    paper_line = with_paper and not suite.paper_absent and not suite.published
    lines = [
        f"# {suite.name}: {suite.title}",
        "",
        f"Ours: {spread} seed{'s' if len(seeds) > 1 else ''} {seed_text}."
        + (" Paper: the published numbers." if paper_line else ""),
    ]
    if suite.published is not None:
        lines += _published_lines(suite.published)
    if suite.paper_absent is not None:
        lines.append(suite.paper_absent)
    lines.append(_units_line(suite))
    if any(row.paper and row.paper[0] != suite.table for row in suite.rows):
        lines.append("The paper's single_task row is Table 4's (same network and recipe).")
    if any(column.metric.startswith(ENCODED_PREFIX) for column in suite.columns):
        lines.append(_ENCODED_NOTE)
    counted = "shown" if all(c.gain for c in suite.columns) else "with a paper number"
    conventions = "; ".join(f"({label}) {GAIN_CONVENTIONS[name]}" for label, name in GAINS)
    lines += [
        "Δm: multi-task gain in % against the single_task row (> 0 is better) over the columns "
        f"{counted}: {conventions}. ↑ / ↓: higher / lower is better.",
        "",
    ]
    return lines


def _published_lines(name: str) -> list[str]:
    """Where a suite's published numbers come from, and the sources' own multi-task gains."""
    lines = ["Published: " + "; ".join(published_sources(name)) + "."]
    gains = {
        row: values[DELTA_COLUMN]
        for row, values in published_rows(name).items()
        if DELTA_COLUMN in values
    }
    if gains:
        cells = ", ".join(f"{row} {value:+.2f}" for row, value in gains.items())
        lines.append(f"Their own Δm (their tasks and metrics, not only the columns here): {cells}.")
    return lines


def _units_line(suite: Suite) -> str:
    """Which columns are in which unit (:data:`nddr.tasks.metrics.UNITS`), e.g. "Units: %: mIoU, PAcc"."""
    names = {"%": "%", "°": "degrees", " years": "years"}
    by_unit: dict[str, list[str]] = {}
    for column in suite.columns:
        unit = names.get(UNITS.get(column.metric, ""), "the dataset's unit")
        by_unit.setdefault(unit, []).append(column.name)
    return (
        "Units: "
        + "; ".join(f"{', '.join(cols)} in {unit}" for unit, cols in by_unit.items())
        + "."
    )


def _footer(missing: Sequence[str]) -> list[str]:
    if not missing:
        return []
    return ["", "Not run yet: " + ", ".join(missing) + "."]
