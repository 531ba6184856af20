"""The suites of ``nddr reproduce``, read from the package's ``suites.yaml``.

A *suite* is one table of the paper (``table1`` .. ``table7``; ``tableS1``: AlexNet, from the
supplementary material, whose numbers we do not have) or a check on built-in data that runs on a
CPU (``cpu-scenes``, ``cpu-digits``). A suite is a list of rows; a row is one or more runs, each a
config of the package's ``configs/``. The ``single_task`` row holds one single-task run per task;
the fused rows start each column from that task's single-task network (§4.3). The file's own
comments describe its format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from nddr.data.conventions import ENCODED_PREFIX
from nddr.errors import NddrError, unknown_choice
from nddr.tasks import TASKS

SINGLE_ROW = "single_task"
"""The row of the single-task runs: Delta_m's baseline, and where fused columns start."""


@dataclass(frozen=True)
class Column:
    """One metric column: ``task``/``metric`` of the results, the paper CSV's column (ours and
    the paper's are in the same units: ratios in %, angles in degrees) and whether it counts in
    Delta_m (a column the paper has no number for would make ours and the paper's incomparable)."""

    name: str
    task: str
    metric: str
    paper: str | None = None
    gain: bool = True


@dataclass(frozen=True)
class Row:
    """One row of a suite: its label, its configs (relative to ``configs/``), whether its runs
    start from the single-task networks, and which paper row to show (``(table, row)``; default:
    the suite's table and this label)."""

    label: str
    configs: tuple[str, ...]
    init_from_single: bool = False
    paper: tuple[int, str] | None = None


@dataclass(frozen=True)
class Suite:
    """A grid of runs printed as one table. ``table`` is the paper's table whose numbers are
    shown (``None``: no paper column); ``paper_absent`` says why a table of the paper shows none;
    ``published`` names a CSV of other publications' numbers for the same rows (beside ours
    instead of the paper's; :func:`nddr.experiments.paper.published_rows`).
    """

    name: str
    title: str
    table: int | None
    tasks: Mapping[str, str]
    columns: tuple[Column, ...]
    single: Mapping[str, str]
    rows: tuple[Row, ...]
    paper_absent: str | None = None
    published: str | None = None

    def row(self, label: str) -> Row:
        for row in self.rows:
            if row.label == label:
                return row
        raise unknown_choice(f"row of suite {self.name!r}", label, [r.label for r in self.rows])

    def paper_row(self, row: Row) -> tuple[int, str] | None:
        if row.paper is not None:
            return row.paper
        return (self.table, row.label) if self.table is not None else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NormalColumns(_Strict):
    label: str = ""
    encoded: bool = False
    paper: bool = False
    gain: bool = True


class _ColumnEntry(_Strict):
    name: str | None = None
    task: str | None = None
    metric: str | None = None
    paper: str | None = None
    gain: bool = True
    normals: _NormalColumns | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _ColumnEntry:
        plain = (self.name, self.task, self.metric)
        if (self.normals is None) == (None in plain):
            raise ValueError("a column gives name, task and metric, or normals: {...} alone")
        return self


class _PaperRow(_Strict):
    table: int
    row: str


class _RowEntry(_Strict):
    configs: list[str] | dict[str, str]
    init_from_single: bool = False
    paper: _PaperRow | None = None


class _SuiteEntry(_Strict):
    title: str
    table: int | None = None
    paper_absent: str | None = None
    published: str | None = None
    tasks: dict[str, str]
    columns: str
    rows: dict[str, _RowEntry]


class _SuitesFile(_Strict):
    columns: dict[str, list[_ColumnEntry]]
    suites: dict[str, _SuiteEntry]


NORMAL_METRICS = tuple(
    metric for metric in TASKS["normals"].higher_is_better if not metric.startswith(ENCODED_PREFIX)
)
"""The true-angle normal metrics (mean, median, within_11.25 ..); each has an encoded twin."""


def normal_columns(
    label: str = "", encoded: bool = False, paper: bool = False, gain: bool = True
) -> tuple[Column, ...]:
    """One column per normal metric: ``N mean{label}`` of metric ``mean`` (``encoded_mean`` if
    ``encoded``), ``N 11.25`` of ``within_11.25`` .., with the paper CSV's ``normal_mean`` .. if
    ``paper``."""
    prefix = ENCODED_PREFIX if encoded else ""
    columns = []
    for metric in NORMAL_METRICS:
        name = metric.removeprefix("within_")
        paper_key = f"normal_{name}" if paper else None
        columns.append(Column(f"N {name}{label}", "normals", prefix + metric, paper_key, gain))
    return tuple(columns)


def load_suites(text: str, where: str = "suites.yaml") -> dict[str, Suite]:
    """Every suite of a suites file's text, by name, in the file's order."""
    try:
        data = _SuitesFile.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as error:
        raise NddrError(f"{where}: not a valid suites file ({_first_error(error)})") from None
    columns = {name: _columns(entries) for name, entries in data.columns.items()}
    return {name: _suite(name, entry, columns, where) for name, entry in data.suites.items()}


def _columns(entries: Sequence[_ColumnEntry]) -> tuple[Column, ...]:
    columns: list[Column] = []
    for entry in entries:
        if entry.normals is not None:
            columns += normal_columns(**entry.normals.model_dump())
        else:
            columns.append(Column(entry.name, entry.task, entry.metric, entry.paper, entry.gain))
    return tuple(columns)


def _suite(
    name: str, entry: _SuiteEntry, column_sets: Mapping[str, tuple[Column, ...]], where: str
) -> Suite:
    if entry.columns not in column_sets:
        raise unknown_choice(f"column set of suite {name!r} in {where}", entry.columns, column_sets)
    for task, kind in entry.tasks.items():
        if kind not in TASKS:
            raise unknown_choice(f"task kind of {name}.{task} in {where}", kind, TASKS)
    single = entry.rows.get(SINGLE_ROW)
    if single is None or not isinstance(single.configs, dict):
        raise NddrError(
            f"{where}: suite {name!r} needs a {SINGLE_ROW} row mapping each task to its config"
        )
    if list(single.configs) != list(entry.tasks):
        raise NddrError(
            f"{where}: suite {name!r}'s {SINGLE_ROW} row maps {', '.join(single.configs)}, but its "
            f"tasks are {', '.join(entry.tasks)}: give one config per task, in the tasks' order"
        )
    rows = []
    for label, row in entry.rows.items():
        if label != SINGLE_ROW and isinstance(row.configs, dict):
            raise NddrError(f"{where}: row {label!r} of suite {name!r} lists its configs as a list")
        paper = (row.paper.table, row.paper.row) if row.paper is not None else None
        rows.append(Row(label, tuple(_values(row.configs)), row.init_from_single, paper))
    if entry.published is not None and entry.table is not None:
        raise NddrError(
            f"{where}: suite {name!r} gives both table and published: the numbers beside ours "
            "come from one source"
        )
    columns = column_sets[entry.columns]
    unknown = sorted({column.task for column in columns} - set(entry.tasks))
    if unknown:
        raise NddrError(f"{where}: suite {name!r} shows columns of tasks it lacks: {unknown}")
    return Suite(
        name,
        entry.title,
        entry.table,
        dict(entry.tasks),
        columns,
        dict(single.configs),
        tuple(rows),
        entry.paper_absent,
        entry.published,
    )


def _values(configs: list[str] | dict[str, str]) -> list[str]:
    return list(configs.values()) if isinstance(configs, dict) else list(configs)


def _first_error(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}"
    return str(error).splitlines()[0]


def _packaged_suites() -> dict[str, Suite]:
    source = resources.files("nddr.experiments").joinpath("suites.yaml")
    return load_suites(source.read_text(encoding="utf-8"), "nddr/experiments/suites.yaml")


SUITES: dict[str, Suite] = _packaged_suites()
"""Every suite by name: ``table1`` .. ``table7``, ``tableS1``, ``cpu-scenes``, ``cpu-digits``."""


def get_suite(name: str) -> Suite:
    """The suite ``name``; an unknown name is an error naming the closest one."""
    if name not in SUITES:
        raise unknown_choice("suite", name, SUITES)
    return SUITES[name]


def selected_rows(suite: Suite, only: Sequence[str] | None = None) -> list[Row]:
    """The rows ``only`` names (all when empty), with the single-task row they depend on and that
    Delta_m is computed against."""
    if not only:
        return list(suite.rows)
    wanted = {suite.row(label).label for label in only} | {SINGLE_ROW}
    return [row for row in suite.rows if row.label in wanted]


def higher_is_better(suite: Suite, gain_only: bool = False) -> dict[str, dict[str, bool]]:
    """Direction of every column's metric (``gain_only``: of the columns Delta_m counts), from
    the task classes (:mod:`nddr.tasks`)."""
    directions: dict[str, dict[str, bool]] = {}
    for column in suite.columns:
        if gain_only and not column.gain:
            continue
        kind = TASKS[suite.tasks[column.task]]
        directions.setdefault(column.task, {})[column.metric] = kind.higher_is_better[column.metric]
    return directions
