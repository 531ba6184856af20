"""The paper's pipeline (§4.3, Table 3 "Sing."): single-task networks first, then the fused
network initialised from them, then fine-tuned.

One planner serves ``nddr train --from-single-task`` and ``nddr reproduce``: a plan is a list of
:class:`RunSpec` in order, each fused run linked to the single-task runs its columns start from,
and :func:`run_plan` trains, resumes or reuses every run. A finished run (its folder holds
``results.json``) is reused only when it was made with the settings planned now; otherwise the
plan stops with a one-line error naming the keys that differ, rather than mixing two experiments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nddr.data import build_dataset
from nddr.errors import NddrError
from nddr.models import init_from_single_task
from nddr.tasks import build_tasks
from nddr.training.build import training_network
from nddr.training.checkpoint import MODEL_FILE, checkpoint_dir, list_checkpoints
from nddr.training.config import Config, build_config
from nddr.training.run_folder import CONFIG_FILE, RESULTS_FILE, saved_config

RECORD_FILE = "reproduce.json"
"""What the planner keeps of a finished run: results, network file and the config it ran with."""

Results = dict[str, dict[str, float]]
Train = Callable[..., Mapping[str, Any]]

NOT_IDENTITY = (
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
"""Config keys that do not change what a finished run computed (where it lives, how it logs and
runs, and the run folders it started from): a reused run may differ in them."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of a plan: its plan and row, seed, config, run folder and network file.

    ``config`` is the YAML file the run's config comes from with ``overrides`` (``None``: a config
    built in memory, as the single-task configs of :func:`single_task_configs`); ``settings`` is
    that config resolved. ``init_from`` maps a task to the run folder of the single-task run its
    column starts from; ``settings`` already points ``model.init_from`` at those runs' planned
    ``checkpoint`` (the network the trainer saves at the last step; the one it reports is used
    when it differs).
    """

    suite: str
    row: str
    seed: int
    config: Path | None
    overrides: tuple[str, ...]
    run_dir: Path
    checkpoint: Path
    init_from: tuple[tuple[str, Path], ...] = ()
    settings: Config | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Outcome:
    """A finished run: its results, its network file and the trainer's summary (or the one its
    ``results.json`` kept)."""

    results: Results
    checkpoint: Path
    cached: bool = False
    summary: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def single_task_configs(config: Config) -> dict[str, Config]:
    """One ``single`` config per task of ``config`` (same data, backbone and recipe)."""
    configs = {}
    for task in _task_names(config):
        data = config.to_dict()
        data["name"] = f"{config.name}-single-{task}"
        data["data"]["tasks"] = [task]
        data["model"].update(variant="single", shortcut=False, fusion_options={}, init_from=None)
        for key in ("loss_weights", "task_options"):
            data["optim"][key] = {
                name: value for name, value in getattr(config.optim, key).items() if name == task
            }
        configs[task] = build_config(data)
    return configs


def fused_config(config: Config, init_from: Mapping[str, str]) -> Config:
    """``config`` with ``model.init_from`` pointing at the single-task model files."""
    fused = config.to_dict()
    fused["model"]["init_from"] = dict(init_from)
    return build_config(fused)


def check_plan(config: Config, singles: dict[str, Config]) -> None:
    """Fail before the first step if the fused network cannot start from the single-task ones.

    Builds every network of the plan on the meta device (no memory, no weights) and maps the
    single-task state dicts into the fused network as :func:`init_from_single_task` will.
    """
    targets = build_dataset(
        config.data.name, config.data.root, "test", tasks=config.data.tasks, **config.data.options
    ).targets
    tasks = build_tasks(targets, config.optim.loss_weights, config.optim.task_options)
    with torch.device("meta"):
        fused = training_network(config, tasks, initialise=False)
        states = {
            task.name: training_network(singles[task.name], [task], initialise=False).state_dict()
            for task in tasks
        }
    try:
        init_from_single_task(fused, states)
    except NddrError as error:
        raise NddrError(
            f"--from-single-task: model.variant={config.model.variant!r} cannot start from the "
            f"single-task networks ({error})"
        ) from None


def planned_checkpoint(config: Config) -> Path:
    """The network file the trainer writes at the last step of ``config``'s run."""
    return checkpoint_dir(config.run_dir, config.optim.steps) / MODEL_FILE


def single_task_plan(config: Config) -> list[RunSpec]:
    """The plan of ``nddr train --from-single-task``: one single-task run per task of ``config``,
    then ``config`` starting from their networks. Checked by :func:`check_plan` first."""
    singles = single_task_configs(config)
    check_plan(config, singles)
    specs = [_memory_spec(config.name, "single_task", single) for single in singles.values()]
    sources = dict(zip(singles, specs))
    fused = fused_config(config, {task: str(spec.checkpoint) for task, spec in sources.items()})
    links = tuple((task, spec.run_dir) for task, spec in sources.items())
    return [*specs, _memory_spec(config.name, config.model.variant, fused, links)]


def run_pipeline(config: Config, train: Train | None = None) -> dict[str, Any]:
    """Train (or resume, or reuse) each task's single-task network, then ``config`` with
    ``model.init_from`` pointing at them. Returns the fused run's summary plus the single ones.

    The whole plan is checked first (:func:`check_plan`), so a fused network that cannot start
    from the single-task ones fails before they are trained; a finished run is reused only when
    its settings are the plan's (:func:`finished`).
    """
    specs = single_task_plan(config)
    outcomes = run_plan(specs, train, hint="give this run another name= or run.out=")
    *singles, fused = specs
    summaries = {
        task: _summary(spec, outcomes[spec.run_dir])
        for task, spec in zip((task for task, _ in fused.init_from), singles)
    }
    return {**_summary(fused, outcomes[fused.run_dir]), "single_task": summaries}


def run_plan(
    specs: Sequence[RunSpec],
    train: Train | None = None,
    log: Callable[[str], None] | None = None,
    *,
    hint: str = "pass another --out",
) -> dict[Path, Outcome]:
    """Run every run of a plan in order, each fused run starting from the networks its
    single-task runs reported; a finished run is reused (:func:`finished`), a stopped one resumed.

    ``train`` is :func:`nddr.training.train` by default: it takes a :class:`Config` (and
    ``resume=True`` for a run folder holding checkpoints of a stopped run) and returns
    ``{"run_dir", "results": {task: {metric: value}}, "checkpoint", ...}``. ``hint`` ends the
    error for a finished run made with other settings (how to keep both).
    """
    if train is None:
        from nddr.training.trainer import train as engine_train

        train = engine_train
    outcomes: dict[Path, Outcome] = {}
    for index, spec in enumerate(specs, 1):
        head = f"[{index}/{len(specs)}] {spec.suite} {spec.row} seed {spec.seed} ({_label(spec)})"
        outcome = finished(spec, hint=hint)
        if outcome is None:
            config = _with_reported_networks(spec, outcomes)
            if resumable(spec.run_dir):
                _say(log, f"{head}: resuming in {spec.run_dir}")
                output = train(config, resume=True)
            else:
                _say(log, f"{head}: training in {spec.run_dir}")
                output = train(config)
            outcome = Outcome(
                clean_results(output.get("results"), spec.run_dir),
                Path(output.get("checkpoint") or spec.checkpoint),
                summary=output,
            )
            if output.get("is_main", True):
                _write_record(spec, config, outcome)
        else:
            _say(log, f"{head}: finished before, reusing {spec.run_dir}")
        outcomes[spec.run_dir] = outcome
    return outcomes


def resumable(run_dir: Path) -> bool:
    """Whether a run stopped before the end left a checkpoint to continue from."""
    return bool(list_checkpoints(run_dir))


def run_state(spec: RunSpec) -> str:
    """What running ``spec`` does: ``"reuse"`` a finished run, ``"resume"`` a stopped one from
    its last checkpoint, or ``"train"`` it from the start. A finished run made with other
    settings is an error, as when the plan runs."""
    if finished(spec) is not None:
        return "reuse"
    return "resume" if resumable(spec.run_dir) else "train"


def finished(spec: RunSpec, *, hint: str = "pass another --out") -> Outcome | None:
    """The outcome of a run finished before (its folder holds ``results.json``), else ``None``.

    A finished run made with other settings (another ``--set``, an edited config) is an error
    naming the keys that differ (and ending with ``hint``) rather than a silent mix of two
    experiments. Its settings are those the planner recorded, else the run folder's
    ``config.yaml``; a folder with neither is reused as it is.
    """
    results_file = spec.run_dir / RESULTS_FILE
    if not results_file.is_file():
        return None
    record = _read_json(spec.run_dir / RECORD_FILE)
    if isinstance(record, Mapping) and isinstance(record.get("results"), Mapping):
        source: Mapping[str, Any] = record
        before = record.get("config")
    else:
        data = _read_json(results_file)
        if not isinstance(data, Mapping):
            raise NddrError(
                f"{results_file} is not a JSON object of results: delete it to run again"
            )
        source = data if isinstance(data.get("results"), Mapping) else {"results": data}
        saved = spec.run_dir / CONFIG_FILE
        before = saved_config(spec.run_dir).to_dict() if saved.is_file() else None
    if spec.settings is not None and isinstance(before, Mapping):
        _check_same(spec, identity(before), identity(spec.settings), hint)
    checkpoint = source.get("checkpoint") or spec.checkpoint
    results = clean_results(source["results"], spec.run_dir)
    summary = _read_json(results_file)
    return Outcome(
        results,
        Path(checkpoint),
        cached=True,
        summary=summary if isinstance(summary, Mapping) else {},
    )


def identity(config: Config | Mapping[str, Any]) -> dict[str, Any]:
    """The flattened settings that decide what a run computes (not where or how it logs):
    every key but :data:`NOT_IDENTITY`, section by section."""
    data = config.to_dict() if isinstance(config, Config) else dict(config)
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if any(dotted == k or dotted.startswith(k + ".") for k in NOT_IDENTITY):
                continue
            if isinstance(value, Mapping) and prefix.count(".") < 1:
                walk(value, dotted + ".")
            else:
                flat[dotted] = value

    walk(data, "")
    return flat


def clean_results(results: object, where: Path) -> Results:
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


def _memory_spec(
    plan: str, row: str, config: Config, links: tuple[tuple[str, Path], ...] = ()
) -> RunSpec:
    return RunSpec(
        plan,
        row,
        config.run.seed,
        None,
        (),
        config.run_dir,
        planned_checkpoint(config),
        links,
        config,
    )


def _with_reported_networks(spec: RunSpec, outcomes: Mapping[Path, Outcome]) -> Config:
    """The spec's config with ``model.init_from`` at the networks its single-task runs reported."""
    settings = spec.settings
    if settings is None:
        raise NddrError(f"run {spec.run_dir} has no resolved config: plan it before running it")
    if not spec.init_from:
        return settings
    return fused_config(
        settings, {task: str(outcomes[run_dir].checkpoint) for task, run_dir in spec.init_from}
    )


def _check_same(
    spec: RunSpec, before: Mapping[str, Any], now: Mapping[str, Any], hint: str
) -> None:
    differing = [key for key in sorted(before.keys() & now.keys()) if before[key] != now[key]]
    if differing:
        shown = ", ".join(f"{key}={before[key]!r} (planned: {now[key]!r})" for key in differing)
        raise NddrError(
            f"{spec.run_dir} holds a finished run with other settings, {shown}: {hint}, or "
            "delete that folder to rerun it"
        )


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
    (spec.run_dir / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    results = spec.run_dir / RESULTS_FILE
    if not results.is_file():
        payload = {"results": outcome.results, "checkpoint": str(outcome.checkpoint)}
        results.write_text(json.dumps(payload, indent=2) + "\n")


def _summary(spec: RunSpec, outcome: Outcome) -> dict[str, Any]:
    """A run's summary as the trainer returns it, for a run trained now or reused."""
    steps = spec.settings.optim.steps if spec.settings is not None else None
    return {
        "run_dir": str(spec.run_dir),
        "results": outcome.results,
        "checkpoint": str(outcome.checkpoint),
        "step": steps,
        "is_main": int(os.environ.get("RANK", "0")) == 0,
        **outcome.summary,
    }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _label(spec: RunSpec) -> str:
    return spec.config.name if spec.config is not None else spec.settings.name


def _say(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def _task_names(config: Config) -> list[str]:
    if config.data.tasks:
        return list(config.data.tasks)
    data = config.data
    return list(build_dataset(data.name, data.root, "test", **data.options).targets)
