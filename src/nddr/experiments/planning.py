"""Plan and run a suite: every run in order (single-task runs first), each loaded and validated
with its overrides, and every finished run reused (:mod:`nddr.training.pipeline`).

Run folders are named by config (``out/<config folder>/<config name>-seed<k>``), so a run any
suite has finished is reused by every other suite under the same ``out``: Tables 1-3 vary the
NDDR network of Table 4 and share its runs. ``--seeds N`` runs every row with ``run.seed``
0..N-1; a killed reproduction continues where it stopped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nddr.errors import NddrError
from nddr.experiments.recipes import DEFAULT_OUT, find_configs
from nddr.experiments.suites import Row, Suite, get_suite, selected_rows
from nddr.experiments.tables import format_table
from nddr.io import PathLike
from nddr.training.config import load_config
from nddr.training.pipeline import RunSpec, Train, planned_checkpoint, run_plan, run_state

_RESERVED = ("name", "run.out", "run.seed", "model.init_from")
"""Keys that reproduce sets itself."""


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
            f"suite {suite.name!r}: config {str(path)!r} does not exist (is --configs a "
            "folder laid out as the package's nddr/configs?)"
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

    ``train`` is :func:`nddr.training.train` by default (see :func:`nddr.training.pipeline.run_plan`);
    the other arguments are :func:`plan`'s.
    """
    specs = plan(suite, seeds, overrides, out, configs=configs, only=only)
    outcomes = run_plan(specs, train, log)
    seed_list = _seed_list(seeds)
    table = format_table(get_suite(suite), specs, outcomes, seed_list, only)
    path = Path(out) / f"{suite}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table + "\n")
    log(f"table written to {path}")
    return table
