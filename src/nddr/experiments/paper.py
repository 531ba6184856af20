"""Published numbers per table and per suite: the paper's (the packaged ``paper_tables.csv``,
tables ``1`` .. ``7``) and those other libraries publish for the layouts nddr reads
(``published_tables.csv``, tables named like ``libmtl-nyuv2``, each row with its ``source``)."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from importlib import resources

from nddr.errors import NddrError
from nddr.experiments.suites import Suite

Results = dict[str, dict[str, float]]

PAPER_CSV = "paper_tables.csv"
"""The paper's tables, numbered."""
PUBLISHED_CSV = "published_tables.csv"
"""Other publications' tables, named; every row names its ``source``."""
DELTA_COLUMN = "delta_mtl"
"""A ``published_tables.csv`` column: the source's own multi-task gain in % (over its own tasks
and metrics, which need not be the suite's columns), empty where it prints none."""
_TEXT_COLUMNS = ("table", "backbone", "dataset", "row", "source")


def is_paper_table(table: int | str) -> bool:
    """Whether ``table`` (``4``, ``"table4"``) is the paper's, not one of ``published_tables.csv``."""
    return str(table).removeprefix("table").isdigit()


def _records(table: int | str) -> tuple[str, list[dict[str, str]], str]:
    """The CSV holding ``table``, its records and the table key as the CSV writes it."""
    file = PAPER_CSV if is_paper_table(table) else PUBLISHED_CSV
    key = str(table).removeprefix("table") if file == PAPER_CSV else str(table)
    with resources.files("nddr.experiments").joinpath(file).open(newline="") as handle:
        return file, list(csv.DictReader(handle)), key


def paper_rows(table: int | str) -> dict[str, dict[str, float]]:
    """The published numbers of one table (``4``, ``"4"``, ``"table4"`` or a name of
    ``published_tables.csv``): row -> CSV column -> value, empty cells left out."""
    file, records, key = _records(table)
    rows = {
        record["row"]: {
            column: float(value)
            for column, value in record.items()
            if column not in _TEXT_COLUMNS and value not in ("", None)
        }
        for record in records
        if record["table"] == key
    }
    if not rows:
        tables = sorted({record["table"] for record in records}, key=_table_order)
        owner = "the paper" if file == PAPER_CSV else PUBLISHED_CSV
        raise NddrError(f"{owner} has no table {table!r}: choose one of {', '.join(tables)}")
    return rows


def paper_sources(table: int | str) -> dict[str, str]:
    """Row -> where its numbers come from and the network they are of (``SOURCE (BACKBONE)``),
    for a table of ``published_tables.csv`` (the paper's tables: none)."""
    if is_paper_table(table):
        return {}
    _, records, key = _records(table)
    return {
        record["row"]: f"{record['source']} ({record['backbone']})"
        for record in records
        if record["table"] == key
    }


def published_gains(table: int | str) -> dict[str, float]:
    """Row -> the source's own multi-task gain (:data:`DELTA_COLUMN`), for the rows of a table
    of ``published_tables.csv`` that print one (the paper's tables: none)."""
    if is_paper_table(table):
        return {}
    return {
        row: numbers[DELTA_COLUMN]
        for row, numbers in paper_rows(table).items()
        if DELTA_COLUMN in numbers
    }


def _table_order(table: str) -> tuple[int, str]:
    return (int(table), "") if table.isdigit() else (0, table)


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


def published_only_rows(suite: Suite) -> dict[str, dict[str, float]]:
    """Rows of a suite's ``published_tables.csv`` table that the suite does not run (methods
    nddr does not implement, e.g. MTAN): label -> column name -> number, in the CSV's order."""
    if suite.table is None or is_paper_table(suite.table):
        return {}
    ours = {row.label for row in suite.rows}
    return {
        label: {c.name: published[c.paper] for c in suite.columns if c.paper in published}
        for label, published in paper_rows(suite.table).items()
        if label not in ours
    }


def as_results(suite: Suite, numbers: Mapping[str, float] | None) -> Results | None:
    if not numbers:
        return None
    results: Results = {}
    for column in suite.columns:
        if column.name in numbers:
            results.setdefault(column.task, {})[column.metric] = numbers[column.name]
    return results
