"""The paper's published numbers (the packaged ``paper_tables.csv``), per table and per suite."""

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


def paper_numbers(suite: Suite) -> dict[str, dict[str, float]]:
    """Per row label, per column name: the published number (none for CPU suites)."""
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
