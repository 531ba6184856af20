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
    as_results,
    is_paper_table,
    paper_numbers,
    paper_sources,
    published_gains,
    published_only_rows,
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
    extra = published_only_rows(suite)
    paper.update(extra)
    with_paper = bool(paper) or suite.paper_absent is not None
    word = _published_word(suite)
    header = ["row"]
    for column in suite.columns:
        name = f"{column.name} {arrows[column]}"
        if not with_paper:
            header.append(name)
        elif column.paper is None:
            header.append(f"{name} ours")
        else:
            header += [f"{name} {word}", f"{name} ours"]
    for label, _ in GAINS:
        header += (
            [f"Δm ({label}) {word}", f"Δm ({label}) ours"] if with_paper else [f"Δm ({label})"]
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
                cells.append(MISSING if number is None else f"{number:.{_digits(column)}f}")
            if not values:
                cells.append(MISSING)
                continue
            mean, std = _mean_std(values)
            means.setdefault(column.task, {})[column.metric] = mean
            digits = _digits(column)
            cells.append(f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits + 1}f}"))
        ours[row.label] = means
        cells_by_row.append(cells)
    for label in extra:
        cells = [label]
        for column in suite.columns:
            if column.paper is not None:
                number = paper[label].get(column.name)
                cells.append(MISSING if number is None else f"{number:.{_digits(column)}f}")
            cells.append(MISSING)
        cells_by_row.append(cells)
    labels = [row.label for row in rows] + list(extra)
    for label, cells in zip(labels, cells_by_row):
        for _, convention in GAINS:
            if with_paper:
                published = as_results(suite, paper.get(label))
                baseline = as_results(suite, paper.get(SINGLE_ROW))
                cells.append(_gain(published, baseline, gain_directions, convention))
            cells.append(_gain(ours.get(label), ours.get(SINGLE_ROW), gain_directions, convention))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*_preamble(suite, seeds, with_paper), *lines, *_footer(missing)])


def _preamble(suite: Suite, seeds: Sequence[int], with_paper: bool) -> list[str]:
    seed_text = ", ".join(map(str, seeds))
    spread = "mean ± sample std over" if len(seeds) > 1 else "one run,"
    sources = paper_sources(suite.table) if suite.table is not None else {}
    theirs = ""
    if with_paper and not suite.paper_absent:
        theirs = (
            " Published: each row's source below." if sources else " Paper: the published numbers."
        )
    lines = [
        f"# {suite.name}: {suite.title}",
        "",
        f"Ours: {spread} seed{'s' if len(seeds) > 1 else ''} {seed_text}." + theirs,
    ]
    lines += _source_lines(sources)
    gains = published_gains(suite.table) if suite.table is not None else {}
    if gains:
        cells = ", ".join(f"{row} {value:+.2f}" for row, value in gains.items())
        lines.append(f"Their own Δm (their tasks and metrics, not only the columns here): {cells}.")
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


def _source_lines(sources: Mapping[str, str]) -> list[str]:
    """One line per distinct source, naming the rows whose numbers it gives, in the CSV's order."""
    rows: dict[str, list[str]] = {}
    for label, source in sources.items():
        rows.setdefault(source, []).append(label)
    return [f"- {', '.join(labels)}: {source}" for source, labels in rows.items()]


def _digits(column: Column) -> int:
    """Decimals of a column: one for % and degrees (as the paper prints them), four for errors
    in the dataset's unit (depth: 0.3771 m), as MTAN and LibMTL print them."""
    return 1 if column.metric in UNITS else 4


def _published_word(suite: Suite) -> str:
    """The header word of the published columns: ``paper`` for the paper's tables."""
    if suite.table is None or is_paper_table(suite.table):
        return "paper"
    return "published"


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
