"""Does the data pipeline keep up with training? (``nddr bench --data``)

Measures, for an experiment config, the samples per second its training pipeline delivers
(reading, decoding, augmentation, collation, with ``data.workers`` loader processes: the
training loop's own loader) and the images per second its network consumes in training steps on
a batch from that pipeline. Their ratio is the pipeline's headroom; below 1 the model waits.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nddr.benchmark.network import Runner, time_runners
from nddr.data.base import TargetSpec
from nddr.tasks import build_tasks
from nddr.training.build import training_batches, training_network, training_set
from nddr.training.config import Config
from nddr.training.distributed import resolve_device
from nddr.training.host_memory import keep_freed_memory
from nddr.training.sampling import AugmentedDataset


@dataclass
class PipelineReport:
    """Pipeline supply against model consumption for one config."""

    dataset: str
    workers: int
    batch_size: int
    crop_size: int | None
    batches: int
    samples_per_s: float
    device: str
    train_images_per_s: float

    @property
    def headroom(self) -> float:
        """Samples/s supplied over images/s consumed (>= 3 is the goal)."""
        return self.samples_per_s / self.train_images_per_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "headroom": self.headroom}


def pipeline_throughput(
    config: Config, train_set: AugmentedDataset, batches: int = 20, warmup: int = 2
) -> tuple[float, dict[str, torch.Tensor]]:
    """Samples per second of ``config``'s training pipeline over ``batches`` batches, after
    ``warmup`` batches that also start the loader processes; and one batch it produced."""
    stream = training_batches(train_set, config)
    for _ in range(warmup):
        sample_batch = next(stream)
    samples, started = 0, time.perf_counter()
    for _ in range(batches):
        sample_batch = next(stream)
        samples += len(sample_batch["image"])
    return samples / (time.perf_counter() - started), sample_batch


def train_consumption(
    config: Config,
    targets: Mapping[str, TargetSpec],
    batch: dict[str, torch.Tensor],
    repeats: int = 5,
    warmup: int = 2,
) -> tuple[float, str]:
    """Images per second that ``config``'s network trains on, on ``config.run.device``, with
    the training loop's step and optimizer for ``config.optim``."""
    device = resolve_device(config.run.device)
    tasks = build_tasks(
        targets, weights=config.optim.loss_weights, options=config.optim.task_options
    )
    runner = Runner(
        training_network(config, tasks),
        tasks,
        batch,
        device,
        amp=config.run.amp,
        channels_last=config.run.channels_last,
        compile=config.run.compile,
        optim=config.optim,
    )
    times = time_runners({"config": runner}, repeats, warmup, kinds=("train",))
    return len(batch["image"]) / statistics.median(times["config"]["train"]), str(device)


def run_pipeline_benchmark(
    config: Config,
    batches: int = 20,
    repeats: int = 5,
    progress: Callable[[str], None] | None = None,
) -> PipelineReport:
    """Pipeline supply and training consumption of ``config`` (see the module docstring)."""
    if config.run.keep_freed_memory:
        keep_freed_memory()
    torch.manual_seed(config.run.seed)
    if progress:
        progress(f"pipeline of {config.data.name} with {config.data.workers} workers")
    train_set = training_set(config)
    samples_per_s, batch = pipeline_throughput(config, train_set, batches)
    if progress:
        progress(f"training steps of {config.model.variant} on {config.model.backbone}")
    images_per_s, device = train_consumption(config, train_set.dataset.targets, batch, repeats)
    return PipelineReport(
        dataset=config.data.name,
        workers=config.data.workers,
        batch_size=config.data.batch_size,
        crop_size=config.data.crop_size,
        batches=batches,
        samples_per_s=samples_per_s,
        device=device,
        train_images_per_s=images_per_s,
    )


def format_pipeline_report(report: PipelineReport) -> str:
    crop = "whole images" if report.crop_size is None else f"crop {report.crop_size}"
    return "\n".join(
        [
            f"{report.dataset}: batch {report.batch_size}, {crop}, {report.workers} loader workers",
            f"pipeline supplies   {report.samples_per_s:10.1f} samples/s ({report.batches} batches)",
            f"training consumes   {report.train_images_per_s:10.1f} images/s on {report.device}",
            f"headroom            {report.headroom:10.1f}x (goal: at least 3x)",
        ]
    )
