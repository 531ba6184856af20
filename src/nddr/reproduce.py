"""Reproduce the paper's tables: run a grid of configs and print it beside the published numbers.

A *suite* is one table of the paper (``table1`` .. ``table7``: NYUv2 ablations §4.1-4.3, VGG-16 /
ResNet-101 / VGG-16-Shortcut §5.1, IMDB-WIKI §5.2; ``tableS1``: AlexNet, from the supplementary
material, whose numbers we do not have) or a check on built-in data that runs on a CPU
(``cpu-scenes``, ``cpu-digits``). A suite is a list of rows; a row is one or more runs, each a
YAML config of ``configs/`` (one experiment per file). The ``single_task`` row holds one
single-task run per task, whose results merge into one row. The fused rows (cross-stitch, sluice,
NDDR) start each column from that task's single-task network (§4.3, Table 3 "Sing."), so a suite
is a small graph: the single-task runs come first and their checkpoints go to the fused runs as
``model.init_from`` overrides. Tables 1-3 vary the NDDR network of Table 4 and share its runs:
run folders are named by config, so a run any suite has finished is reused by every other suite
(under the same ``out``).

``--seeds N`` runs every row with ``run.seed`` 0..N-1 (a folder per seed) and reports mean and
sample standard deviation. A run whose folder holds ``results.json`` is not run again, so a
killed reproduction continues where it stopped. The table shows, per metric, the paper's number
beside ours, and the multi-task gain Delta_m (:mod:`nddr.metrics.gain`) of every row against the
suite's single-task row in both conventions (over metrics, over tasks), for the paper's numbers
and for ours, over the same metrics.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from nddr.config import Config, load_config
from nddr.errors import NddrError, unknown_choice
from nddr.io import PathLike
from nddr.metrics import GAIN_CONVENTIONS, UNITS, multi_task_gain
from nddr.metrics.normals import ENCODED_PREFIX
from nddr.tasks import TASKS

RESULTS_NAME = "results.json"
"""A run folder holding this file is finished and is not run again."""
RECORD_NAME = "reproduce.json"
"""What ``reproduce`` keeps of a finished run: results, checkpoint and the config it ran with."""
DEFAULT_OUT = "runs/reproduce"
MISSING = "-"
"""A table cell without a number."""

Results = dict[str, dict[str, float]]
Train = Callable[..., Mapping[str, Any]]

# Keys that reproduce sets itself, and keys that do not change what a finished run computed.
_RESERVED = ("name", "run.out", "run.seed", "model.init_from")
_NOT_IDENTITY = (
    "name",
    "data.root",
    "data.workers",
    "data.eval_batch_size",
    "model.init_from",
    "run.out",
    "run.device",
    "run.progress",
    "run.log_every",
    "run.checkpoint_every",
    "run.keep_checkpoints",
    "run.inspect_every",
    "run.compile",
    "run.channels_last",
)


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
    shown (``None``: no paper column); ``paper_absent`` says why a table of the paper shows none.
    """

    name: str
    title: str
    table: int | None
    tasks: Mapping[str, str]
    columns: tuple[Column, ...]
    single: Mapping[str, str]
    rows: tuple[Row, ...]
    paper_absent: str | None = None

    def row(self, label: str) -> Row:
        for row in self.rows:
            if row.label == label:
                return row
        raise unknown_choice(f"row of suite {self.name!r}", label, [r.label for r in self.rows])

    def paper_row(self, row: Row) -> tuple[int, str] | None:
        if row.paper is not None:
            return row.paper
        return (self.table, row.label) if self.table is not None else None


@dataclass(frozen=True)
class RunSpec:
    """One training run of a suite: row, seed, config file, overrides and run folder.

    ``init_from`` maps a task to the run folder of the single-task run its column starts from;
    ``overrides`` already point ``model.init_from`` at those runs' planned ``checkpoint`` (the
    network the trainer saves at the last step; the one it reports is used when it differs).
    """

    suite: str
    row: str
    seed: int
    config: Path
    overrides: tuple[str, ...]
    run_dir: Path
    checkpoint: Path
    init_from: tuple[tuple[str, Path], ...] = ()
    settings: Config | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Outcome:
    """A finished run: its results and its network file."""

    results: Results
    checkpoint: Path
    cached: bool = False


_NYU_TASKS = {"segmentation": "segmentation", "normals": "normals"}
_NORMAL_METRICS = tuple(
    metric for metric in TASKS["normals"].higher_is_better if not metric.startswith(ENCODED_PREFIX)
)
"""The true-angle normal metrics (mean, median, within_11.25 ..); each has an encoded twin."""


def _normal_columns(
    label: str = "", prefix: str = "", paper: bool = False, gain: bool = True
) -> tuple[Column, ...]:
    """One column per normal metric: ``N mean{label}`` of metric ``{prefix}mean``, ``N 11.25``
    of ``within_11.25`` .., with the paper CSV's ``normal_mean`` .. if ``paper``."""
    columns = []
    for metric in _NORMAL_METRICS:
        name = metric.removeprefix("within_")
        paper_key = f"normal_{name}" if paper else None
        columns.append(Column(f"N {name}{label}", "normals", prefix + metric, paper_key, gain))
    return tuple(columns)


_SEG_COLUMNS = (
    Column("mIoU", "segmentation", "miou", "seg_miou"),
    Column("PAcc", "segmentation", "pixel_accuracy", "seg_pacc"),
)
# The paper's normal figures go beside the angles between encoded normals (the released code's
# metric, see _ENCODED_NOTE); the true angles have their own columns, without a paper number.
_NYU_COLUMNS = (
    *_normal_columns(" (enc)", ENCODED_PREFIX, paper=True),
    *_SEG_COLUMNS,
    *_normal_columns(" (true)", gain=False),
)
_ENCODED_NOTE = (
    "Normals: the paper's N figures stand beside our (enc) angles, measured between prediction "
    "and ground truth both encoded as the released code stores normals, (n + 1) / 2 x 255, and "
    "L2-normalised without decoding (its loss and metric do this; the paper's figures are most "
    "likely these). The (true) columns are the angles between the unit normals themselves: the "
    "paper has no number for them and Δm leaves them out."
)
_NO_SUPPLEMENT = (
    "The paper puts Table S1 in its supplementary material, which is not available to us, so no "
    "published numbers are shown."
)
_T4 = "nyuv2/table4/"
_T4_SINGLE = {
    "segmentation": _T4 + "single_segmentation.yaml",
    "normals": _T4 + "single_normals.yaml",
}
_T4_NDDR = _T4 + "nddr.yaml"
_FROM_TABLE4 = (4, "single_task")


def _single_row(single: Mapping[str, str], paper: tuple[int, str] | None = None) -> Row:
    return Row("single_task", tuple(single.values()), paper=paper)


def _baseline_suite(
    name: str,
    title: str,
    table: int | None,
    folder: str,
    tasks: Mapping[str, str],
    columns: tuple[Column, ...],
    shortcut_row: bool = False,
    paper_absent: str | None = None,
) -> Suite:
    """Single-task, multi-task, cross-stitch, sluice and NDDR rows from ``folder``'s configs."""
    single = {task: f"{folder}/single_{task}.yaml" for task in tasks}
    rows = [
        _single_row(single),
        Row("multi_task", (f"{folder}/multi.yaml",)),
        Row("cross_stitch", (f"{folder}/cross_stitch.yaml",), init_from_single=True),
        Row("sluice", (f"{folder}/sluice.yaml",), init_from_single=True),
        Row("nddr", (f"{folder}/nddr.yaml",), init_from_single=True),
    ]
    if shortcut_row:
        rows.append(Row("nddr_shortcut", (f"{folder}/nddr_shortcut.yaml",), init_from_single=True))
    return Suite(name, title, table, tasks, columns, single, tuple(rows), paper_absent)


def _nddr_rows(rows: Iterable[tuple[str, str, bool]]) -> tuple[Row, ...]:
    return tuple(Row(label, (config,), init_from_single=init) for label, config, init in rows)


def _build_suites() -> dict[str, Suite]:
    nyu = "NYUv2 semantic segmentation + surface normals"
    suites = [
        Suite(
            "table1",
            f"Table 1 (§4.1): NDDR initialisation, {nyu}, VGG-16",
            1,
            _NYU_TASKS,
            _NYU_COLUMNS,
            _T4_SINGLE,
            (
                _single_row(_T4_SINGLE, _FROM_TABLE4),
                *_nddr_rows(
                    [
                        ("init(1.0;0.0)", "nyuv2/table1/init_1_0.yaml", True),
                        ("init(0.9;0.1)", _T4_NDDR, True),
                        ("init(0.5;0.5)", "nyuv2/table1/init_0.5_0.5.yaml", True),
                        ("init(0.1;0.9)", "nyuv2/table1/init_0.1_0.9.yaml", True),
                        ("init(0.0;1.0)", "nyuv2/table1/init_0_1.yaml", True),
                        ("init(xavier)", "nyuv2/table1/init_xavier.yaml", True),
                    ]
                ),
            ),
        ),
        Suite(
            "table2",
            f"Table 2 (§4.2): NDDR learning-rate scale, {nyu}, VGG-16",
            2,
            _NYU_TASKS,
            _NYU_COLUMNS,
            _T4_SINGLE,
            (
                _single_row(_T4_SINGLE, _FROM_TABLE4),
                *_nddr_rows(
                    [
                        ("nddr_lr_scale=1", "nyuv2/table2/lr_scale_1.yaml", True),
                        ("nddr_lr_scale=10", "nyuv2/table2/lr_scale_10.yaml", True),
                        ("nddr_lr_scale=100", _T4_NDDR, True),
                        ("nddr_lr_scale=1000", "nyuv2/table2/lr_scale_1000.yaml", True),
                    ]
                ),
            ),
        ),
        Suite(
            "table3",
            f"Table 3 (§4.3): NDDR from pretrained vs single-task weights, {nyu}, VGG-16 "
            "(our 'voc_pretrained' row starts from ImageNet weights: see the config)",
            3,
            _NYU_TASKS,
            _NYU_COLUMNS,
            _T4_SINGLE,
            (
                _single_row(_T4_SINGLE, _FROM_TABLE4),
                *_nddr_rows(
                    [
                        ("init_from=voc_pretrained", "nyuv2/table3/init_imagenet.yaml", False),
                        ("init_from=single_task", _T4_NDDR, True),
                    ]
                ),
            ),
        ),
        _baseline_suite(
            "table4", f"Table 4 (§5.1.1): {nyu}, VGG-16", 4, _T4[:-1], _NYU_TASKS, _NYU_COLUMNS
        ),
        _baseline_suite(
            "table5",
            f"Table 5 (§5.1.2): {nyu}, ResNet-101",
            5,
            "nyuv2/table5",
            _NYU_TASKS,
            _NYU_COLUMNS,
        ),
        _baseline_suite(
            "table6",
            f"Table 6 (§5.1.3): {nyu}, VGG-16-Shortcut",
            6,
            "nyuv2/table6",
            _NYU_TASKS,
            _NYU_COLUMNS,
        ),
        _baseline_suite(
            "tableS1",
            f"Table S1 (supplementary material): {nyu}, AlexNet",
            None,
            "nyuv2/tableS1",
            _NYU_TASKS,
            _NYU_COLUMNS,
            paper_absent=_NO_SUPPLEMENT,
        ),
        _baseline_suite(
            "table7",
            "Table 7 (§5.2): IMDB-WIKI age estimation + gender classification, VGG-16",
            7,
            "imdb_wiki/table7",
            {"age": "age", "gender": "classification"},
            (
                Column("age MAE", "age", "mean_ae", "age_mae"),
                Column("age MedAE", "age", "median_ae", "age_medae"),
                Column("gender acc", "gender", "accuracy", "gender_acc"),
            ),
        ),
        _baseline_suite(
            "cpu-scenes",
            "CPU check: built-in Scenes, segmentation + surface normals, tiny backbone",
            None,
            "cpu/scenes",
            _NYU_TASKS,
            (*_normal_columns(), *(Column(c.name, c.task, c.metric) for c in _SEG_COLUMNS)),
            shortcut_row=True,
        ),
        _baseline_suite(
            "cpu-digits",
            "CPU check: built-in MultiDigits, left + right digit, tiny backbone",
            None,
            "cpu/digits",
            {"left": "classification", "right": "classification"},
            (Column("left acc", "left", "accuracy"), Column("right acc", "right", "accuracy")),
            shortcut_row=True,
        ),
    ]
    return {suite.name: suite for suite in suites}


SUITES: dict[str, Suite] = _build_suites()
"""Every suite by name: ``table1`` .. ``table7``, ``tableS1``, ``cpu-scenes``, ``cpu-digits``."""


def get_suite(name: str) -> Suite:
    """The suite ``name``; an unknown name is an error naming the closest one."""
    if name not in SUITES:
        raise unknown_choice("suite", name, SUITES)
    return SUITES[name]


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


def paper_rows(table: int | str) -> dict[str, dict[str, float]]:
    """The published numbers of one table (``4``, ``"4"`` or ``"table4"``): row -> CSV column
    -> value, empty cells left out (read from the packaged ``paper_tables.csv``)."""
    text = str(table).removeprefix("table")
    source = resources.files("nddr").joinpath("paper_tables.csv")
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


def find_configs(configs: PathLike | None = None) -> Path:
    """The configs folder: ``configs`` if given, else the repository's ``configs/`` next to the
    package's source tree, else ``./configs``."""
    if configs is not None:
        candidates = [Path(configs)]
    else:
        candidates = [Path(__file__).resolve().parents[2] / "configs", Path.cwd() / "configs"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    where = " or ".join(str(c) for c in candidates)
    raise NddrError(
        f"no configs folder at {where}: run from a clone of the nddr repository or pass "
        "--configs DIR (the repository's configs/ folder)"
    )


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise NddrError(f"--seeds must be at least 1, got {seeds}")
        return list(range(seeds))
    values = [int(seed) for seed in seeds]
    if not values or len(set(values)) != len(values):
        raise NddrError(f"seeds must be distinct and at least one, got {values}")
    return values


def _check_overrides(overrides: Sequence[str]) -> None:
    for override in overrides:
        key = override.partition("=")[0].strip()
        for reserved in _RESERVED:
            if key == reserved or key.startswith(reserved + "."):
                raise NddrError(
                    f"override {override!r}: reproduce sets {reserved} itself "
                    "(run folders come from --out, seeds from --seeds)"
                )


def _quoted(value: object) -> str:
    """A value for a ``key=value`` override that YAML reads back as this exact string."""
    return json.dumps(str(value))


def selected_rows(suite: Suite, only: Sequence[str] | None = None) -> list[Row]:
    """The rows ``only`` names (all when empty), with the single-task row they depend on and that
    Delta_m is computed against."""
    if not only:
        return list(suite.rows)
    wanted = {suite.row(label).label for label in only} | {"single_task"}
    return [row for row in suite.rows if row.label in wanted]


def plan(
    suite: str,
    seeds: int | Sequence[int] = 1,
    overrides: Sequence[str] = (),
    out: PathLike = DEFAULT_OUT,
    *,
    configs: PathLike | None = None,
    only: Sequence[str] | None = None,
) -> list[RunSpec]:
    """The runs of ``suite`` in order (per seed: single-task runs before the runs that start from
    them), every config loaded and validated with its overrides.

    Args:
        suite: A name of :data:`SUITES`.
        seeds: How many seeds (0..N-1), or the seeds themselves.
        overrides: ``key=value`` overrides applied to every run (e.g. ``data.root=...``).
        out: Folder of the runs: ``out/<config folder>/<config name>-seed<k>``.
        configs: The configs folder (default: :func:`find_configs`).
        only: Row labels to run (with the single-task row).
    """
    definition = get_suite(suite)
    root = find_configs(configs)
    seed_list = _seed_list(seeds)
    _check_overrides(overrides)
    rows = selected_rows(definition, only)
    singles = {task: Path(config) for task, config in definition.single.items()}
    specs: list[RunSpec] = []
    for seed in seed_list:
        planned: dict[Path, RunSpec] = {}
        for row in rows:
            for relative in row.configs:
                sources: dict[str, RunSpec] = {}
                if row.init_from_single:
                    missing = [t for t, c in singles.items() if c not in planned]
                    if missing:
                        raise NddrError(
                            f"suite {suite!r}: row {row.label!r} starts from the single-task runs "
                            f"of {', '.join(missing)}, which are not planned before it"
                        )
                    sources = {t: planned[c] for t, c in singles.items()}
                spec = _spec(definition, row, Path(relative), seed, root, out, overrides, sources)
                planned[Path(relative)] = spec
                specs.append(spec)
    return specs


def _spec(
    suite: Suite,
    row: Row,
    relative: Path,
    seed: int,
    root: Path,
    out: PathLike,
    overrides: Sequence[str],
    sources: Mapping[str, RunSpec],
) -> RunSpec:
    path = root / relative
    if not path.is_file():
        raise NddrError(
            f"suite {suite.name!r}: config {str(path)!r} does not exist (is --configs the "
            "repository's configs/ folder?)"
        )
    run_out = Path(out) / relative.parent
    own = [
        *overrides,
        f"name={_quoted(f'{relative.stem}-seed{seed}')}",
        f"run.out={_quoted(run_out)}",
        f"run.seed={seed}",
        *(
            f"model.init_from.{task}={_quoted(source.checkpoint)}"
            for task, source in sources.items()
        ),
    ]
    settings = load_config(path, own)
    return RunSpec(
        suite.name,
        row.label,
        seed,
        path,
        tuple(own),
        settings.run_dir,
        planned_checkpoint(settings),
        tuple((task, source.run_dir) for task, source in sources.items()),
        settings,
    )


def planned_checkpoint(config: Config) -> Path:
    """The network file the trainer writes at the last step of ``config``'s run."""
    from nddr.engine.checkpoint import MODEL_FILE, checkpoint_dir

    return checkpoint_dir(config.run_dir, config.optim.steps) / MODEL_FILE


def _resumable(run_dir: Path) -> bool:
    """Whether a run stopped before the end left a checkpoint to continue from."""
    from nddr.engine.checkpoint import list_checkpoints

    return bool(list_checkpoints(run_dir))


def run_state(spec: RunSpec) -> str:
    """What running ``spec`` does: ``"reuse"`` a finished run, ``"resume"`` a stopped one from
    its last checkpoint, or ``"train"`` it from the start. A finished run made with other
    settings is an error, as when the suite runs."""
    if finished(spec) is not None:
        return "reuse"
    return "resume" if _resumable(spec.run_dir) else "train"


def format_plan(specs: Sequence[RunSpec]) -> str:
    """The runs of a plan, one block each: label, seed, config, overrides, run folder, and
    whether it is reused or resumed."""
    lines = []
    hidden = ("name=", "run.out=", "run.seed=")
    notes = {"reuse": "  (finished: reused)", "resume": "  (stopped: resumed)", "train": ""}
    for index, spec in enumerate(specs, 1):
        lines.append(f"{index:>3}. {spec.row}  seed {spec.seed}  {_shown_path(spec.config)}")
        shown = [o for o in spec.overrides if not o.startswith(hidden)]
        if shown:
            lines.append("     overrides: " + " ".join(shown))
        lines.append(f"     run dir:   {spec.run_dir}{notes[run_state(spec)]}")
    return "\n".join(lines)


def plan_document(suite: str, specs: Sequence[RunSpec]) -> dict[str, Any]:
    """A plan as JSON-ready data, so it can be audited without following the YAML base chains:
    per run its row, seed, config file, overrides, run folder, planned checkpoint, state
    (:func:`run_state`), the runs its columns start from and its fully resolved config."""
    index = {spec.run_dir: number for number, spec in enumerate(specs, 1)}
    runs = []
    for number, spec in enumerate(specs, 1):
        settings = spec.settings
        if settings is None:
            settings = load_config(spec.config, spec.overrides)
        state = run_state(spec)
        runs.append(
            {
                "index": number,
                "row": spec.row,
                "seed": spec.seed,
                "config_file": str(spec.config),
                "overrides": list(spec.overrides),
                "run_dir": str(spec.run_dir),
                "checkpoint": str(spec.checkpoint),
                "state": state,
                "reused": state == "reuse",
                "init_from": {
                    task: {
                        "run": index[run_dir],
                        "run_dir": str(run_dir),
                        "checkpoint": settings.model.init_from[task],
                    }
                    for task, run_dir in spec.init_from
                },
                "config": settings.to_dict(),
            }
        )
    definition = get_suite(suite)
    return {
        "suite": definition.name,
        "title": definition.title,
        "seeds": list(dict.fromkeys(spec.seed for spec in specs)),
        "runs": runs,
    }


def _shown_path(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_suite(
    suite: str,
    seeds: int | Sequence[int] = 1,
    overrides: Sequence[str] = (),
    out: PathLike = DEFAULT_OUT,
    train: Train | None = None,
    *,
    configs: PathLike | None = None,
    only: Sequence[str] | None = None,
    log: Callable[[str], None] = _log_stderr,
) -> str:
    """Run (or reuse) every run of ``suite`` and return its markdown table, also written to
    ``out/<suite>.md``.

    ``train`` is :func:`nddr.engine.train` by default: it takes a :class:`Config` (and
    ``resume=True`` for a run folder holding checkpoints of a stopped run) and returns
    ``{"run_dir", "results": {task: {metric: value}}, "checkpoint"}``. Arguments as :func:`plan`.
    """
    specs = plan(suite, seeds, overrides, out, configs=configs, only=only)
    if train is None:
        from nddr.engine import train as engine_train

        train = engine_train
    outcomes: dict[Path, Outcome] = {}
    for index, spec in enumerate(specs, 1):
        head = f"[{index}/{len(specs)}] {suite} {spec.row} seed {spec.seed} ({spec.config.name})"
        outcome = finished(spec)
        if outcome is None:
            config = load_config(spec.config, _resolved(spec, outcomes))
            if _resumable(spec.run_dir):
                log(f"{head}: resuming in {spec.run_dir}")
                output = train(config, resume=True)
            else:
                log(f"{head}: training in {spec.run_dir}")
                output = train(config)
            outcome = Outcome(
                _clean_results(output.get("results"), spec.run_dir),
                Path(output.get("checkpoint") or spec.checkpoint),
            )
            _write_record(spec, config, outcome)
        else:
            log(f"{head}: finished before, reusing {spec.run_dir}")
        outcomes[spec.run_dir] = outcome
    seed_list = _seed_list(seeds)
    table = format_table(get_suite(suite), specs, outcomes, seed_list, only)
    path = Path(out) / f"{suite}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table + "\n")
    log(f"table written to {path}")
    return table


def _resolved(spec: RunSpec, outcomes: Mapping[Path, Outcome]) -> list[str]:
    """The spec's overrides with ``model.init_from`` at the checkpoints the runs reported."""
    overrides = [o for o in spec.overrides if not o.startswith("model.init_from.")]
    for task, run_dir in spec.init_from:
        overrides.append(f"model.init_from.{task}={_quoted(outcomes[run_dir].checkpoint)}")
    return overrides


def _identity(config: Config | Mapping[str, Any]) -> dict[str, Any]:
    """The flattened settings that decide what a run computes (not where or how it logs)."""
    data = config.to_dict() if isinstance(config, Config) else dict(config)
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if any(dotted == k or dotted.startswith(k + ".") for k in _NOT_IDENTITY):
                continue
            if isinstance(value, Mapping) and prefix.count(".") < 1:
                walk(value, dotted + ".")
            else:
                flat[dotted] = value

    walk(data, "")
    return flat


def _write_record(spec: RunSpec, config: Config, outcome: Outcome) -> None:
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "suite": spec.suite,
        "row": spec.row,
        "seed": spec.seed,
        "results": outcome.results,
        "checkpoint": str(outcome.checkpoint),
        "config": config.to_dict(),
    }
    (spec.run_dir / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n")
    results = spec.run_dir / RESULTS_NAME
    if not results.is_file():
        payload = {"results": outcome.results, "checkpoint": str(outcome.checkpoint)}
        results.write_text(json.dumps(payload, indent=2) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def finished(spec: RunSpec) -> Outcome | None:
    """The outcome of a run finished before (its folder holds ``results.json``), else ``None``.

    A finished run made with other settings (another ``--set``, an edited config) is an error
    rather than a silent mix of two experiments in one table.
    """
    results_file = spec.run_dir / RESULTS_NAME
    if not results_file.is_file():
        return None
    record = _read_json(spec.run_dir / RECORD_NAME)
    if isinstance(record, Mapping) and isinstance(record.get("results"), Mapping):
        if spec.settings is not None and isinstance(record.get("config"), Mapping):
            _check_same(spec, _identity(record["config"]), _identity(spec.settings))
        source: Mapping[str, Any] = record
    else:
        data = _read_json(results_file)
        if not isinstance(data, Mapping):
            raise NddrError(
                f"{results_file} is not a JSON object of results: delete it to run again"
            )
        source = data if isinstance(data.get("results"), Mapping) else {"results": data}
    checkpoint = source.get("checkpoint") or spec.checkpoint
    return Outcome(_clean_results(source["results"], spec.run_dir), Path(checkpoint), cached=True)


def _check_same(spec: RunSpec, before: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    for key in sorted(before.keys() & now.keys()):
        if before[key] != now[key]:
            raise NddrError(
                f"{spec.run_dir} holds a finished run with {key}={before[key]!r}, but this plan "
                f"has {key}={now[key]!r}: pass another --out, or delete that folder to rerun it"
            )


def _clean_results(results: object, where: Path) -> Results:
    """``{task: {metric: float}}`` from a trainer's or a file's results, non-numbers dropped."""
    if not isinstance(results, Mapping):
        raise NddrError(f"the run in {where} reported no results (got {results!r})")
    clean: Results = {}
    for task, metrics in results.items():
        if isinstance(metrics, Mapping):
            clean[str(task)] = {
                str(name): float(value)
                for name, value in metrics.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
            }
    return clean


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
"""The Delta_m columns: header label and :func:`nddr.metrics.multi_task_gain` convention."""


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
    paper = _paper_numbers(suite)
    with_paper = bool(paper) or suite.paper_absent is not None
    header = ["row"]
    for column in suite.columns:
        name = f"{column.name} {arrows[column]}"
        if not with_paper:
            header.append(name)
        elif column.paper is None:
            header.append(f"{name} ours")
        else:
            header += [f"{name} paper", f"{name} ours"]
    for label, _ in GAINS:
        header += [f"Δm ({label}) paper", f"Δm ({label}) ours"] if with_paper else [f"Δm ({label})"]
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
                published = _as_results(suite, paper.get(row.label))
                baseline = _as_results(suite, paper.get("single_task"))
                cells.append(_gain(published, baseline, gain_directions, convention))
            cells.append(
                _gain(ours.get(row.label), ours.get("single_task"), gain_directions, convention)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*_preamble(suite, seeds, with_paper), *lines, *_footer(missing)])


def _paper_numbers(suite: Suite) -> dict[str, dict[str, float]]:
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


def _as_results(suite: Suite, numbers: Mapping[str, float] | None) -> Results | None:
    if not numbers:
        return None
    results: Results = {}
    for column in suite.columns:
        if column.name in numbers:
            results.setdefault(column.task, {})[column.metric] = numbers[column.name]
    return results


def _preamble(suite: Suite, seeds: Sequence[int], with_paper: bool) -> list[str]:
    seed_text = ", ".join(map(str, seeds))
    spread = "mean ± sample std over" if len(seeds) > 1 else "one run,"
    lines = [
        f"# {suite.name}: {suite.title}",
        "",
        f"Ours: {spread} seed{'s' if len(seeds) > 1 else ''} {seed_text}."
        + (" Paper: the published numbers." if with_paper and not suite.paper_absent else ""),
    ]
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


def _units_line(suite: Suite) -> str:
    """Which columns are in which unit (:data:`nddr.metrics.UNITS`), e.g. "Units: %: mIoU, PAcc"."""
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
