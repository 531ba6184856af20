"""The published numbers beside ours: the paper's (the packaged ``paper_tables.csv``), per table
and per suite, or another publication's for a suite that names a ``published`` CSV."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from importlib import resources

from nddr.errors import NddrError
from nddr.experiments.suites import Suite

Results = dict[str, dict[str, float]]


def paper_rows(table: int | str) -> dict[str, dict[str, float]]:
    """The published numbers of one table (``4``, ``"4"`` or ``"table4"``): row -> CSV column
    -> value, empty cells left out (read from the packaged ``paper_tables.csv``)."""
    text = str(table).removeprefix("table")
    source = resources.files("nddr.experiments").joinpath("paper_tables.csv")
    with source.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    rows = {
        record["row"]: {
            key: float(value)
            for key, value in record.items()
            if key not in ("table", "backbone", "dataset", "row") and value not in ("", None)
        }
        for record in records
        if record["table"] == text
    }
    if not rows:
        tables = sorted({record["table"] for record in records}, key=int)
        raise NddrError(f"the paper has no table {table!r}: choose one of {', '.join(tables)}")
    return rows


PUBLISHED_TEXT_COLUMNS = ("row", "backbone", "source")
"""The columns of a ``published`` CSV that are not numbers: the suite's row label, the network
the numbers are of and where they are printed (a paper and its table)."""

DELTA_COLUMN = "delta_mtl"
"""The column of a ``published`` CSV holding the source's own multi-task gain, in %."""


def _published_records(name: str) -> list[dict[str, str]]:
    source = resources.files("nddr.experiments").joinpath(name)
    if not source.is_file():
        raise NddrError(f"published numbers file {name!r} is not in nddr/experiments/")
    with source.open(newline="") as handle:
        return list(csv.DictReader(handle))


def published_rows(name: str) -> dict[str, dict[str, float]]:
    """A packaged ``published`` CSV (``nddr/experiments/NAME``): row -> column -> value, empty
    cells and :data:`PUBLISHED_TEXT_COLUMNS` left out."""
    return {
        record["row"]: {
            key: float(value)
            for key, value in record.items()
            if key not in PUBLISHED_TEXT_COLUMNS and value not in ("", None)
        }
        for record in _published_records(name)
    }


def published_sources(name: str) -> list[str]:
    """The distinct ``backbone`` and ``source`` of a ``published`` CSV's rows, in order."""
    sources: list[str] = []
    for record in _published_records(name):
        entry = f"{record['source']} ({record['backbone']})"
        if entry not in sources:
            sources.append(entry)
    return sources


def paper_numbers(suite: Suite) -> dict[str, dict[str, float]]:
    """Per row label, per column name: the published number (the paper's, or the suite's
    ``published`` CSV's; none for CPU suites)."""
    if suite.published is not None:
        rows = published_rows(suite.published)
        return {
            row.label: {
                c.name: rows[row.label][c.paper]
                for c in suite.columns
                if c.paper in rows.get(row.label, {})
            }
            for row in suite.rows
            if row.label in rows
        }
    numbers: dict[str, dict[str, float]] = {}
    tables: dict[int, dict[str, dict[str, float]]] = {}
    for row in suite.rows:
        where = suite.paper_row(row)
        if where is None:
            continue
        table, label = where
        if table not in tables:
            tables[table] = paper_rows(table)
        published = tables[table].get(label, {})
        numbers[row.label] = {
            c.name: published[c.paper] for c in suite.columns if c.paper in published
        }
    return numbers


def as_results(suite: Suite, numbers: Mapping[str, float] | None) -> Results | None:
    if not numbers:
        return None
    results: Results = {}
    for column in suite.columns:
        if column.name in numbers:
            results.setdefault(column.task, {})[column.metric] = numbers[column.name]
    return results
