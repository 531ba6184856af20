"""Speed, memory and compute of every network variant, side by side (``nddr bench``).

For each workload (the K single-task networks one by one, the shared-trunk baseline,
cross-stitch, sluice, NDDR-CNN and NDDR-CNN-Shortcut) it measures one training step (forward,
loss, backward, optimizer step: the training loop's own code) and one inference forward. All
workloads are built in one process and timed in interleaved rounds, so drift of the machine hits
them alike; medians are reported, and each time ratio is the median of its per-round ratios with
a confidence interval, the rounds going on until every interval is within ±1.5 %
(:mod:`nddr.benchmark.rounds`). Peak memory is measured for each workload in a fresh process
(CPU: growth of the resident set; CUDA: peak allocated). FLOPs are counted on meta tensors.

The two figures that matter: the time ratio, NDDR-CNN's step over the sum of the K single-task
steps, and the FLOP ratio, the same in FLOPs, which the time ratio approaches when the added
layers run as efficiently as the columns' convolutions.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import default_collate
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from nddr.benchmark.rounds import (
    CONFIDENCE,
    MAX_ROUNDS,
    MIN_ROUNDS,
    PRECISION,
    Interval,
    median_interval,
    precise_enough,
    rounds_needed,
)
from nddr.data.base import TargetSpec
from nddr.data.transforms import JointTransform
from nddr.errors import NddrError, unknown_choice
from nddr.models import MultiTaskNetwork, build_network
from nddr.models.fusion.registry import SHARED_TRUNK, SINGLE_TASK, bench_variants
from nddr.tasks import Task, build_tasks
from nddr.training.balancing import build_balancer
from nddr.training.config import OptimConfig, load_config
from nddr.training.distributed import resolve_device
from nddr.training.host_memory import keep_freed_memory
from nddr.training.optimizer import training_optimizer
from nddr.training.step import AMP_DTYPES, compute_loss, optimizer_step

_FIRST_TARGETS: tuple[tuple[str, TargetSpec], ...] = (
    ("segmentation", TargetSpec("segmentation", 40)),
    ("normals", TargetSpec("normals")),
    ("depth", TargetSpec("depth")),
)


def bench_targets(num_tasks: int) -> dict[str, TargetSpec]:
    """K dense targets as on NYUv2: 40-class segmentation, normals, depth, then 10-class maps."""
    if num_tasks < 1:
        raise NddrError(f"--tasks must be at least 1, got {num_tasks}")
    targets = dict(_FIRST_TARGETS[:num_tasks])
    for k in range(len(targets), num_tasks):
        targets[f"segmentation{k}"] = TargetSpec("segmentation", 10)
    return targets


def workload_targets(tasks: Sequence[str], num_tasks: int) -> dict[str, TargetSpec]:
    """The bench targets named by a workload."""
    targets = bench_targets(num_tasks)
    return {name: targets[name] for name in tasks}


@dataclass(frozen=True)
class Settings:
    """What every workload of one benchmark shares."""

    backbone: str = "tiny"
    size: tuple[int, int] = (161, 161)
    batch: int = 2
    num_tasks: int = 2
    device: str = "auto"
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    keep_freed_memory: bool = True
    repeats: int | None = None
    """Timed rounds; None: at least MIN_ROUNDS, then on until every time ratio's interval is
    within ``precision``, at most ``max_repeats``."""
    warmup: int = 2
    threads: int | None = None
    precision: float = PRECISION
    max_repeats: int = MAX_ROUNDS


@dataclass(frozen=True)
class Workload:
    """One row: a network variant on some of the tasks, run one way."""

    label: str
    variant: str
    shortcut: bool
    tasks: tuple[str, ...]
    execution: str = "columns"


def plan_workloads(
    variants: Sequence[str], num_tasks: int, executions: Sequence[str] = ("columns",)
) -> list[Workload]:
    """The rows to measure: ``single`` expands to one single-task network per task; the K-column
    variants get one row per execution. ``variants`` are names of :func:`bench_variants`."""
    names = tuple(bench_targets(num_tasks))
    choices = bench_variants()
    workloads = []
    for name in variants:
        if name not in choices:
            raise unknown_choice("variant", name, choices)
        variant, shortcut = choices[name]
        if variant == SINGLE_TASK:
            workloads += [
                Workload(f"{SINGLE_TASK}:{task}", SINGLE_TASK, False, (task,)) for task in names
            ]
            continue
        for execution in executions if variant != SHARED_TRUNK else ("columns",):
            label = name if execution == "columns" else f"{name} [{execution}]"
            workloads.append(Workload(label, variant, shortcut, names, execution))
    return workloads


class Runner:
    """A network with its optimizer and one batch on the device, ready to step.

    Its training step is the training loop's own (:mod:`nddr.training.step`), with the training
    loop's optimizer (:func:`nddr.training.optimizer.training_optimizer`) and loss balancing
    (``optim.balancing``) for an experiment's ``optim``.
    """

    def __init__(
        self,
        network: MultiTaskNetwork,
        tasks: list[Task],
        batch: dict[str, Tensor],
        device: torch.device,
        amp: str = "none",
        channels_last: bool = False,
        compile: bool = False,
        *,
        optim: OptimConfig,
    ) -> None:
        self.tasks, self.device, self.channels_last = tasks, device, channels_last
        self.amp_dtype = AMP_DTYPES[amp]
        network.to(device)
        if channels_last:
            network.to(memory_format=torch.channels_last)
        network.train()
        self.network = network
        self.model: nn.Module = torch.compile(network) if compile else network
        self.balancer = build_balancer(optim, tasks, network, device=device)
        self.optimizer = training_optimizer(network, optim, self.balancer.parameters())
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype is torch.float16)
        self.batch = {key: value.to(device) for key, value in batch.items()}

    @classmethod
    def for_workload(cls, workload: Workload, settings: Settings, device: torch.device) -> Runner:
        network = _build(workload, settings).set_execution(workload.execution)
        targets = workload_targets(workload.tasks, settings.num_tasks)
        batch = random_batch(targets, settings.batch, settings.size)
        return cls(
            network,
            build_tasks(targets),
            batch,
            device,
            settings.amp,
            settings.channels_last,
            settings.compile,
            optim=load_config(None).optim,
        )

    def train_step(self) -> None:
        loss = compute_loss(
            self.model,
            self.network,
            self.tasks,
            self.batch,
            self.amp_dtype,
            self.channels_last,
            self.balancer,
        )
        self.balancer.backward(loss, self.scaler, 1)
        optimizer_step(self.optimizer, self.scaler, self.network)

    @torch.inference_mode()
    def infer(self) -> None:
        self.network.eval()
        image = self.batch["image"]
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            self.model(image)
        self.network.train()


def random_batch(
    targets: dict[str, TargetSpec], batch: int, size: tuple[int, int]
) -> dict[str, Tensor]:
    """A batch of random raw samples in the data contract's conventions, through the
    evaluation transform: the tensors training sees, without reading any file."""
    rng = np.random.default_rng(0)
    height, width = size
    samples = []
    for _ in range(batch):
        sample: dict[str, Any] = {"image": rng.integers(0, 256, (height, width, 3), dtype=np.uint8)}
        for name, spec in targets.items():
            if spec.kind == "segmentation":
                sample[name] = rng.integers(0, spec.num_classes, (height, width), dtype=np.uint8)
            elif spec.kind == "normals":
                normals = rng.normal(size=(height, width, 3)).astype(np.float32)
                sample[name] = normals / np.linalg.norm(normals, axis=-1, keepdims=True)
            elif spec.kind == "saliency":
                sample[name] = rng.integers(0, 2, (height, width), dtype=np.uint8)
            elif spec.kind == "regression":
                sample[name] = float(rng.normal())
            elif spec.num_classes:
                sample[name] = int(rng.integers(0, spec.num_classes))
            else:
                sample[name] = rng.uniform(0.5, 10.0, (height, width)).astype(np.float32)
        samples.append(JointTransform(targets, train=False)(sample))
    return default_collate(samples)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


Times = dict[str, dict[str, list[float]]]
"""Seconds per round: workload label -> ``train`` / ``inference`` -> one value per timed round."""


def time_runners(
    runners: dict[str, Runner],
    repeats: int,
    warmup: int,
    progress: Callable[[str], None] | None = None,
    kinds: Sequence[str] = ("train", "inference"),
    done: Callable[[Times], bool] | None = None,
    max_repeats: int | None = None,
) -> Times:
    """Seconds per training step and per inference of every runner, timed in interleaved rounds
    (every runner once per round, the order reversed every other round) after ``warmup``
    untimed rounds.

    ``repeats`` timed rounds; with ``done``, more rounds follow until ``done(times)`` holds or
    ``max_repeats`` rounds are timed."""
    times: Times = {label: {kind: [] for kind in kinds} for label in runners}
    order = list(runners.items())
    limit = max(repeats, max_repeats or 0) if done else repeats
    round_index = 0
    while round_index < warmup + repeats or (
        done is not None and round_index < warmup + limit and not done(times)
    ):
        if progress:
            kind = "warm-up" if round_index < warmup else "timed"
            progress(f"round {round_index + 1} ({kind})")
        for label, runner in order if round_index % 2 == 0 else reversed(order):
            calls = {"train": runner.train_step, "inference": runner.infer}
            for kind in kinds:
                _synchronize(runner.device)
                started = time.perf_counter()
                calls[kind]()
                _synchronize(runner.device)
                if round_index >= warmup:
                    times[label][kind].append(time.perf_counter() - started)
        round_index += 1
    return times


def grouped_conv_backward_flop(
    grad_out_shape: Sequence[int],
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    _bias: object,
    _stride: object,
    _padding: object,
    _dilation: object,
    transposed: bool,
    _output_padding: object,
    groups: int,
    output_mask: Sequence[bool],
    out_shape: Sequence[Sequence[int] | None],
    **_: object,
) -> int:
    """FLOPs of ``aten.convolution_backward`` (arguments as shapes): torch's formula, whose
    weight-gradient term ignores ``groups`` (G x too many for a grouped convolution, C x for
    the per-channel part of a low-rank NDDR), with that term divided by the groups."""

    def channels_first(shape: Sequence[int]) -> list[int]:
        return [shape[1], shape[0], *shape[2:]]

    flops = 0
    if output_mask[0]:
        flops += conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1]:
        first, second = (grad_out_shape, x_shape) if transposed else (x_shape, grad_out_shape)
        weight = [channels_first(shape) for shape in (first, second, out_shape[1])]
        flops += conv_flop_count(*weight, transposed=False) // groups
    return flops


_FLOP_FORMULAS = {torch.ops.aten.convolution_backward: grouped_conv_backward_flop}
"""The counts :func:`network_flops` puts in place of torch's."""


def network_flops(network: nn.Module, image: Tensor) -> tuple[int, int]:
    """FLOPs of one training step (forward + backward) and of one inference on ``image``.

    Build ``network`` and ``image`` on the meta device to count without memory or compute.
    Grouped convolutions count their weight gradient per group (:func:`grouped_conv_backward_flop`).
    """
    with FlopCounterMode(display=False, custom_mapping=_FLOP_FORMULAS) as counter:
        network.eval()
        network(image)
    inference = counter.get_total_flops()
    with FlopCounterMode(display=False, custom_mapping=_FLOP_FORMULAS) as counter:
        network.train()
        outputs = network(image)
        sum(output.float().sum() for output in outputs.values()).backward()
    return counter.get_total_flops(), inference


def count_flops(workload: Workload, settings: Settings) -> tuple[int, int]:
    """FLOPs of one training step (forward + backward) and of one inference, on meta tensors.

    Counted on the per-column execution: grouped execution computes the same function, and
    ``torch.utils.flop_counter`` ignores ``groups`` in convolution backward (it would count K x).
    """
    with torch.device("meta"):
        network = _build(workload, settings)
        return network_flops(network, torch.empty(settings.batch, 3, *settings.size))


def _build(workload: Workload, settings: Settings) -> MultiTaskNetwork:
    """The network of ``workload`` (per-column execution), on the current default device."""
    tasks = build_tasks(workload_targets(workload.tasks, settings.num_tasks))
    return build_network(
        settings.backbone,
        [task.head_spec() for task in tasks],
        workload.variant,
        shortcut=workload.shortcut,
    )


_LARGEST_PROBE = 4096
"""Largest side :func:`check_inputs` tries when it looks for the smallest input that runs."""


def check_inputs(settings: Settings, workloads: Sequence[Workload]) -> None:
    """Raise a one-line :class:`NddrError` naming the option and the smallest value that works
    where a workload cannot train on the settings' input: ``size`` below the backbone's output
    stride or below what its strides and pools need, or ``batch`` 1 where batch norm would see
    one value per channel.

    Each distinct network is built on meta tensors and run forward in training mode, so nothing
    is allocated or computed; the smallest side that runs is found by bisection on such runs.
    """
    height, width = settings.size
    checked = set()
    for workload in workloads:
        if (workload.variant, workload.shortcut) in checked:
            continue
        checked.add((workload.variant, workload.shortcut))
        with torch.device("meta"):
            network = _build(workload, settings).train()
        stride = network.columns[0].output_stride
        wide_enough = min(height, width) >= stride
        if wide_enough and _forward_error(network, settings.batch, settings.size) is None:
            continue
        batch = max(settings.batch, 2)
        error = _forward_error(network, batch, settings.size)
        if wide_enough and error is None:
            raise NddrError(
                f"--batch {settings.batch} cannot train {workload.label} on {settings.backbone} "
                f"at {height}x{width}: batch norm needs more than one value per channel in "
                f"training; use --batch {batch}"
            )
        runs_from = _smallest_side(network, batch)
        if runs_from is None or min(height, width) >= max(stride, runs_from):
            raise NddrError(f"{workload.label} on {settings.backbone} cannot run: {error}")
        side = max(stride, runs_from)
        reason = (
            f"its output stride is {stride}"
            if stride >= runs_from
            else f"its convolutions and pools need {side}x{side}"
        )
        raise NddrError(
            f"--size {height} {width} is too small for {settings.backbone}: {reason}; "
            f"use at least --size {side} {side}"
        )


def _forward_error(network: nn.Module, batch: int, size: tuple[int, int]) -> str | None:
    """Why a forward of ``network`` on a meta batch of this size fails; None where it runs."""
    try:
        network(torch.empty(batch, 3, *size, device="meta"))
    except (RuntimeError, ValueError) as error:
        return str(error).splitlines()[0]
    return None


def _smallest_side(network: nn.Module, batch: int) -> int | None:
    """The smallest side S such that ``network`` runs on S x S inputs (None up to the largest
    probe): doubling, then bisection."""
    low, high = 0, 1  # low fails (or is 0), high is being tried
    while _forward_error(network, batch, (high, high)) is not None:
        if high >= _LARGEST_PROBE:
            return None
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        if _forward_error(network, batch, (middle, middle)) is None:
            high = middle
        else:
            low = middle
    return high


def _resident_bytes(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise NddrError(f"/proc/self/status has no {field_name}")


def _prepare_process(settings: Settings) -> torch.device:
    """Threads and host-memory tuning as ``settings`` say, in this process; the device."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.keep_freed_memory:
        keep_freed_memory()
    return resolve_device(settings.device)


def _peak_memory_probe(workload: Workload, settings: Settings) -> int:
    """Run in a fresh process: peak memory of building and training ``workload`` (bytes)."""
    device = _prepare_process(settings)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = _resident_bytes("VmRSS")
    runner = Runner.for_workload(workload, settings, device)
    for _ in range(settings.warmup + 2):
        runner.train_step()
    _synchronize(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) - before
    return _resident_bytes("VmHWM") - before


def peak_memory(workload: Workload, settings: Settings) -> int | None:
    """Peak training memory of ``workload`` in bytes, each in its own process (None where the
    platform cannot tell: CPU figures need Linux's /proc)."""
    device = resolve_device(settings.device)
    if device.type == "cpu" and not _has_proc():
        return None
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_peak_memory_probe, (workload, settings))


def _has_proc() -> bool:
    try:
        _resident_bytes("VmHWM")
    except (OSError, NddrError):
        return False
    return True


@dataclass
class Row:
    """The figures of one workload."""

    label: str
    parameters: int
    train_flops: int
    inference_flops: int
    train_step_s: float
    inference_s: float
    train_images_per_s: float
    inference_images_per_s: float
    peak_memory_bytes: int | None = None


@dataclass
class Report:
    """A whole benchmark: settings, device, rows, and the ratios against the single-task sum."""

    settings: Settings
    device: str
    rows: list[Row]
    ratios: dict[str, dict[str, Any]] = field(default_factory=dict)
    rounds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": asdict(self.settings),
            "device": self.device,
            "rounds": self.rounds,
            "rows": [asdict(row) for row in self.rows],
            "ratios": self.ratios,
        }

    def wide_intervals(self) -> dict[str, float]:
        """Workloads whose training-time ratio interval is wider than the settings' precision,
        with its relative half-width."""
        wide = {}
        for label, entry in self.ratios.items():
            low, high = entry.get("time_interval") or (None, None)
            if low is None:
                continue
            interval = Interval(entry["time"], low, high, entry["time_confidence"])
            if interval.relative_half_width > self.settings.precision:
                wide[label] = interval.relative_half_width
        return wide


def run_benchmark(
    settings: Settings,
    workloads: Sequence[Workload],
    measure_memory: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Measure every workload (see the module docstring) and the ratios to the single-task sum.

    Inputs the networks cannot train on are refused first (:func:`check_inputs`)."""
    check_inputs(settings, workloads)
    device = _prepare_process(settings)
    settings = replace(settings, threads=settings.threads or torch.get_num_threads())
    torch.manual_seed(0)
    runners = {}
    for workload in workloads:
        if progress:
            progress(f"building {workload.label}")
        runners[workload.label] = Runner.for_workload(workload, settings, device)
    adaptive = settings.repeats is None
    labels = [workload.label for workload in workloads]

    def precise(times: Times) -> bool:
        intervals = round_ratio_intervals(labels, times).values()
        return precise_enough(intervals, settings.precision)

    times = time_runners(
        runners,
        MIN_ROUNDS if adaptive else settings.repeats,
        settings.warmup,
        progress,
        done=precise if adaptive else None,
        max_repeats=settings.max_repeats,
    )
    rows = []
    for workload in workloads:
        train_s = statistics.median(times[workload.label]["train"])
        inference_s = statistics.median(times[workload.label]["inference"])
        train_flops, inference_flops = count_flops(workload, settings)
        rows.append(
            Row(
                workload.label,
                sum(p.numel() for p in runners[workload.label].network.parameters()),
                train_flops,
                inference_flops,
                train_s,
                inference_s,
                settings.batch / train_s,
                settings.batch / inference_s,
            )
        )
    del runners
    if measure_memory:
        for row, workload in zip(rows, workloads):
            if progress:
                progress(f"peak memory of {workload.label}")
            row.peak_memory_bytes = peak_memory(workload, settings)
    report = Report(settings, str(device), rows, rounds=len(times[labels[0]]["train"]))
    report.ratios = single_task_ratios(rows, times)
    return report


def round_ratio_intervals(labels: Sequence[str], times: Times) -> dict[str, Interval]:
    """Per multi-task workload: the median of its per-round training-time ratios to the
    single-task workloads' sum, with its interval (:func:`nddr.benchmark.rounds.median_interval`).
    """
    singles = [label for label in labels if label.startswith(f"{SINGLE_TASK}:")]
    if not singles:
        return {}
    return {
        label: median_interval(_round_ratios(times, label, singles, "train"))
        for label in labels
        if label not in singles
    }


def _round_ratios(times: Times, label: str, singles: Sequence[str], kind: str) -> list[float]:
    """Within each round: ``label``'s time over the sum of the ``singles``' times."""
    per_round = zip(times[label][kind], *(times[single][kind] for single in singles))
    return [values[0] / sum(values[1:]) for values in per_round]


def single_task_ratios(
    rows: Sequence[Row], times: Times | None = None
) -> dict[str, dict[str, Any]]:
    """For every multi-task row: its time, FLOPs and peak memory over the single-task rows' sum.

    With the per-round ``times``, time ratios are the median over rounds of the ratio within a
    round, which cancels drift of the machine's speed between rounds, each with its interval
    (``time_interval``, ``inference_time_interval``: [low, high] at ``time_confidence``); else
    ratios of medians.
    """
    singles = [row for row in rows if row.label.startswith(f"{SINGLE_TASK}:")]
    if not singles:
        return {}

    def total(name: str) -> float | None:
        values = [getattr(row, name) for row in singles]
        return None if any(value is None for value in values) else float(sum(values))

    ratios = {}
    for row in rows:
        if row.label.startswith(f"{SINGLE_TASK}:"):
            continue
        entry: dict[str, Any] = {}
        for key, name in (
            ("time", "train_step_s"),
            ("flops", "train_flops"),
            ("memory", "peak_memory_bytes"),
            ("inference_time", "inference_s"),
        ):
            base, value = total(name), getattr(row, name)
            entry[key] = value / base if base and value is not None else None
        if times:
            labels = [single.label for single in singles]
            for key, kind in (("time", "train"), ("inference_time", "inference")):
                interval = median_interval(_round_ratios(times, row.label, labels, kind))
                entry[key] = interval.median
                entry[f"{key}_interval"] = [interval.low, interval.high]
                entry["time_confidence"] = interval.confidence
        ratios[row.label] = entry
    return ratios


def format_report(report: Report) -> str:
    """The report as a markdown table plus the ratios, with the time ratios' intervals and a
    warning line for any interval wider than the settings' precision."""
    s = report.settings
    rounds = (
        f"{report.rounds} rounds" if s.repeats is not None else f"{report.rounds} rounds (adaptive)"
    )
    lines = [
        f"{s.backbone}, {s.num_tasks} tasks, batch {s.batch} at {s.size[0]}x{s.size[1]}, "
        f"{report.device} ({s.threads} threads), amp {s.amp}, channels-last {s.channels_last}, "
        f"compile {s.compile}; median of {rounds} after {s.warmup} warm-up rounds",
        "",
        "| workload | params (M) | train GFLOP | train step (ms) | train img/s | "
        "inference (ms) | inference img/s | peak memory (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report.rows:
        memory = "n/a" if row.peak_memory_bytes is None else f"{row.peak_memory_bytes / 2**20:.0f}"
        lines.append(
            f"| {row.label} | {row.parameters / 1e6:.2f} | {row.train_flops / 1e9:.1f} | "
            f"{row.train_step_s * 1e3:.1f} | {row.train_images_per_s:.1f} | "
            f"{row.inference_s * 1e3:.1f} | {row.inference_images_per_s:.1f} | {memory} |"
        )
    if not report.ratios:
        return "\n".join(lines)
    confidence = next(iter(report.ratios.values())).get("time_confidence")
    lines += [
        "",
        "Against the sum of the single-task networks"
        + (
            f" (time ratios: median of the per-round ratios [{confidence:.0%} interval]):"
            if confidence
            else ":"
        ),
        "",
        "| workload | time ratio | FLOP ratio | memory ratio | inference time ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, entry in report.ratios.items():
        cells = [
            _ratio_cell(entry, "time"),
            _ratio_cell(entry, "flops"),
            _ratio_cell(entry, "memory"),
            _ratio_cell(entry, "inference_time"),
        ]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    if confidence is not None and confidence < CONFIDENCE:
        lines += [
            "",
            f"warning: {report.rounds} rounds are too few for a {CONFIDENCE:.0%} interval: the "
            f"brackets are the range of the rounds, which holds the median with "
            f"{confidence:.0%} confidence",
        ]
    wide = report.wide_intervals()
    if wide:
        spread = ", ".join(f"{label} ±{width:.1%}" for label, width in wide.items())
        needed = rounds_needed(report.rounds, max(wide.values()), s.precision)
        flag = "--max-repeats" if s.repeats is None else "--repeats"
        lines += [
            "",
            f"warning: after {report.rounds} rounds the time-ratio intervals are wider than "
            f"±{s.precision:.1%}: {spread}; the machine is too noisy for a decision of that size "
            f"(rerun when it is quiet, or with {flag} {needed}, about what this noise needs)",
        ]
    return "\n".join(lines)


def _ratio_cell(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if value is None:
        return "n/a"
    interval = entry.get(f"{key}_interval")
    if interval is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
