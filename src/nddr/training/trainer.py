"""The one training loop for every variant: the paper's recipe (§4.2) on any dataset of tasks.

SGD with momentum, poly learning-rate decay over a step budget, the parameter groups of
:func:`nddr.parameter_groups`, per-task loss weights, gradient accumulation, periodic evaluation,
atomic checkpoints with exact resume, JSONL + TensorBoard logs, a progress bar; DDP under
``torchrun`` (only rank 0 writes), SyncBN, AMP (bf16 / fp16), ``torch.compile``, channels-last.

SIGTERM / SIGINT stop the run after the current step with a checkpoint of that step
(:class:`Preempted`); a non-finite loss stops it with a one-line error, or with
``optim.skip_nonfinite`` skips that step's update.
"""

from __future__ import annotations

import json
import random
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from nddr.data import build_dataset
from nddr.data.transforms import JointTransform
from nddr.errors import NddrError
from nddr.io import atomic_write
from nddr.models import MultiTaskNetwork, load_weights
from nddr.models.fusion.registry import auxiliary_loss_name
from nddr.tasks import Task, build_tasks
from nddr.training import checkpoint as checkpoints
from nddr.training.balancing import DEFAULT_BALANCING, build_balancer
from nddr.training.build import training_batches, training_network, training_set
from nddr.training.config import Config
from nddr.training.distributed import (
    Context,
    average_gradients,
    barrier,
    max_across,
    mean_across,
    setup,
    teardown,
)
from nddr.training.evaluate import evaluate
from nddr.training.host_memory import keep_freed_memory
from nddr.training.log import RunLog
from nddr.training.optimizer import training_optimizer
from nddr.training.preemption import Preempted, StopSignals, ignore_stop_signals
from nddr.training.preflight import check_run_dir, preflight
from nddr.training.run_folder import (
    RESULTS_FILE,
    RunLock,
    check_resume_changes,
    config_changes,
    record_config,
    remove_earlier_run,
    saved_config,
)
from nddr.training.sampling import ShardSampler
from nddr.training.step import AMP_DTYPES, compute_loss, optimizer_step

SKIP_CAP = 0.1
"""With ``optim.skip_nonfinite``, the share of steps that may be skipped (once 5 were) before the
run stops anyway: more means the recipe diverges, not an odd batch."""
SKIP_CAP_MIN = 5
NONFINITE_FIX = (
    "lower optim.lr, use run.amp=bf16 instead of fp16, or set optim.skip_nonfinite=true to skip such "
    "batches"
)


def train(
    config: Config, resume: bool = False, run_dir: str | Path | None = None
) -> dict[str, Any]:
    """Train (or resume) the experiment ``config``; returns the run folder, the final test
    metrics per task and the final model file.

    The run writes to ``run_dir`` (default: ``run.out/name`` of the config): a resume continues
    the folder it is given, wherever it is and whatever it is called.
    """
    if config.run.keep_freed_memory:
        keep_freed_memory()
    context = setup(config.run.device)
    try:
        return Trainer(config, context, resume, run_dir).fit()
    finally:
        teardown(context)


def poly_schedule(steps: int, power: float):
    """The poly decay of DeepLab and the paper: lr = base * (1 - step / steps) ** power."""
    return lambda step: max(1.0 - step / steps, 0.0) ** power


class Trainer:
    """Builds data, network and optimizer from a config, then runs :meth:`fit`."""

    def __init__(
        self,
        config: Config,
        context: Context,
        resume: bool = False,
        run_dir: str | Path | None = None,
    ) -> None:
        self.config, self.context, self.resume = config, context, resume
        self.run_dir = Path(run_dir) if run_dir is not None else config.run_dir
        self.lock = RunLock(self.run_dir)
        self.config_changes: dict[str, tuple[Any, Any]] = {}
        self.stop_signals = StopSignals()
        self.last_checkpoint: Path | None = None
        self.global_step = 0
        """The step being computed (1-based, as checkpoints count)."""
        self.skipped_batches = 0
        self.skipped_steps = 0
        self._last_skip = ""
        torch.manual_seed(config.run.seed)
        random.seed(config.run.seed)
        try:
            self._open_run_dir()
            self._build_data()
            self._build_network()
            self._build_optimizer()
            if context.is_main:
                preflight(
                    config, self.train_set, self.test_loader.dataset, self.network, self.run_dir
                )
            barrier(context)
        except BaseException:
            self.lock.release()
            raise

    def _open_run_dir(self) -> None:
        """Lock the run folder (rank 0) and check it fits a new run or a resume; every process
        agrees before any goes on."""
        problem = ""
        if self.context.is_main:
            try:
                check_run_dir(self.run_dir)
                self.lock.acquire()
            except NddrError as error:
                problem = str(error)
        if max_across(torch.tensor([int(bool(problem))]), self.context).item():
            raise NddrError(
                problem or f"run folder {str(self.run_dir)!r} failed its checks on rank 0"
            )
        self._check_run_dir()

    def _check_run_dir(self) -> None:
        existing = checkpoints.list_checkpoints(self.run_dir)
        if self.resume and not existing:
            raise NddrError(
                f"--resume: run folder {str(self.run_dir)!r} has no checkpoint to resume"
            )
        if not self.resume and existing:
            raise NddrError(
                f"run folder {str(self.run_dir)!r} already has checkpoints: pass --resume to continue "
                "it, or another name= / run.out= to start a new run"
            )
        if self.resume:
            self.config_changes = config_changes(saved_config(self.run_dir), self.config)
            check_resume_changes(self.config_changes, 0)
        if not self.context.is_main:
            return
        for stale in checkpoints.remove_unfinished(self.run_dir):
            print(
                f"note: removed {str(stale)!r}, a checkpoint whose save never finished",
                file=sys.stderr,
            )
        if not self.resume:
            removed = remove_earlier_run(self.run_dir)
            if removed:
                print(
                    f"note: run folder {str(self.run_dir)!r} held an earlier run without a "
                    f"checkpoint; removed its {', '.join(removed)} to start afresh",
                    file=sys.stderr,
                )

    def _build_data(self) -> None:
        data, optim, context = self.config.data, self.config.optim, self.context
        per_rank = context.world_size * optim.accumulate
        if data.batch_size % per_rank:
            raise NddrError(
                f"data.batch_size {data.batch_size} must divide by processes x optim.accumulate "
                f"({context.world_size} x {optim.accumulate})"
            )
        # Rank 0 builds first (a built-in dataset writes its cache); the others then read it.
        if not context.is_main:
            barrier(context)
        self.train_set = training_set(self.config)
        test_set = build_dataset(data.name, data.root, "test", tasks=data.tasks, **data.options)
        if context.is_main:
            barrier(context)
        targets = self.train_set.dataset.targets
        for key in ("loss_weights", "task_options"):
            unknown = set(getattr(optim, key)) - set(targets)
            if unknown:
                raise NddrError(
                    f"optim.{key} names {sorted(unknown)[0]!r}, not a task of {data.name}: "
                    f"use {', '.join(targets)}"
                )
        self.tasks: list[Task] = build_tasks(targets, optim.loss_weights, optim.task_options)
        test_set.transform = JointTransform(test_set.targets, train=False)
        if len(self.train_set) < data.batch_size:
            raise NddrError(
                f"{data.name} train split has {len(self.train_set)} samples, fewer than data.batch_size {data.batch_size}"
            )
        self.test_loader = DataLoader(
            test_set,
            batch_size=data.eval_batch_size,
            sampler=ShardSampler(len(test_set), context.rank, context.world_size),
            num_workers=data.workers,
            worker_init_fn=ignore_stop_signals,
            pin_memory=context.device.type == "cuda",
        )

    def _build_network(self) -> None:
        model, context = self.config.model, self.context
        network = training_network(self.config, self.tasks)
        if model.sync_bn and context.distributed:
            network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
        network.to(context.device)
        if self.config.run.channels_last:
            network.to(memory_format=torch.channels_last)
        self.network: MultiTaskNetwork = network
        self.model: nn.Module = network
        if context.distributed:
            device_ids = [context.device.index] if context.device.type == "cuda" else None
            self.model = DistributedDataParallel(network, device_ids=device_ids)
        if self.config.run.compile:
            self.model = torch.compile(self.model)

    def _build_optimizer(self) -> None:
        optim, context = self.config.optim, self.context
        self.balancer = build_balancer(
            optim,
            self.tasks,
            self.network,
            device=context.device,
            steps_per_epoch=len(self.train_set) // self.config.data.batch_size,
            reduce=lambda values: mean_across(values, context),
        )
        self.optimizer = training_optimizer(self.network, optim, self.balancer.parameters())
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, poly_schedule(optim.steps, optim.poly_power)
        )
        self.amp_dtype = AMP_DTYPES[self.config.run.amp]
        self.scaler = torch.amp.GradScaler(
            self.context.device.type, enabled=self.amp_dtype is torch.float16
        )

    def _set_train_mode(self) -> None:
        self.network.train()
        if self.config.model.freeze_bn:
            for module in self.network.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def _batches(self, micro_seen: int) -> Iterator[dict[str, Tensor]]:
        context = self.context
        return training_batches(
            self.train_set,
            self.config,
            micro_seen,
            context.rank,
            context.world_size,
            pin_memory=context.device.type == "cuda",
        )

    def _restore(self) -> tuple[int, int]:
        latest, warnings = checkpoints.latest_resumable(self.run_dir)
        if self.context.is_main:
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
        load_weights(self.network, checkpoints.find_model_file(latest))
        state = checkpoints.load_trainer_state(latest)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.balancer.load_state_dict(state.get("balancing", {}))
        checkpoints.set_rng_state(state["rng"])
        self.skipped_batches = int(state.get("skipped_batches", 0))
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.last_checkpoint = latest
        return int(state["step"]), int(state["micro_seen"])

    def _save(self, step: int, micro_seen: int) -> None:
        if self.context.is_main:
            trainer_state = {
                "step": step,
                "micro_seen": micro_seen,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "balancing": self.balancer.state_dict(),
                "rng": checkpoints.rng_state(),
                "skipped_batches": self.skipped_batches,
                "skipped_steps": self.skipped_steps,
            }
            checkpoints.save_checkpoint(
                self.run_dir,
                step,
                self.network,
                self.tasks,
                self.config.to_dict(),
                trainer_state,
                keep=self.config.run.keep_checkpoints,
            )
        barrier(self.context)
        self.last_checkpoint = checkpoints.checkpoint_dir(self.run_dir, step)

    def _save_once(self, step: int, micro_seen: int) -> None:
        """Save ``step`` unless its checkpoint was the last one saved or resumed."""
        if self.last_checkpoint != checkpoints.checkpoint_dir(self.run_dir, step):
            self._save(step, micro_seen)

    def _stop_if_signalled(self, step: int, micro_seen: int) -> None:
        """After a finished step: if any process got SIGTERM / SIGINT, save and raise
        :class:`Preempted` on every process (they agree on the step: one small all-reduce)."""
        signum = int(max_across(torch.tensor([self.stop_signals.received]), self.context).item())
        if not signum:
            return
        self._save_once(step, micro_seen)
        raise Preempted(
            signum,
            step,
            checkpoints.checkpoint_dir(self.run_dir, step),
            self.run_dir,
            self.context.distributed,
            self.context.is_main,
        )

    def _evaluate(self) -> dict[str, dict[str, float]]:
        return evaluate(
            self.network,
            self.tasks,
            self.test_loader,
            self.context.device,
            self.amp_dtype,
            self.config.run.channels_last,
        )

    def fit(self) -> dict[str, Any]:
        """Train to ``optim.steps``, evaluate, and release the run folder however it ends."""
        try:
            return self._fit()
        finally:
            self.lock.release()

    def _fit(self) -> dict[str, Any]:
        config, context = self.config, self.context
        run = config.run
        step, micro_seen = self._restore() if self.resume else (0, 0)
        check_resume_changes(self.config_changes, step)
        if context.is_main:
            record_config(self.run_dir, config, step, self.config_changes)
        log = RunLog(self.run_dir, step, context.is_main)
        progress = _progress_bar(run.progress and context.is_main, config.optim.steps, step)
        batches = self._batches(micro_seen)
        self._set_train_mode()
        seen_images, clock = 0, time.perf_counter()
        trained_images, train_seconds = 0, 0.0
        # Before the first batch: data-loader workers forked from here inherit the handlers.
        self.stop_signals.install()
        try:
            while step < config.optim.steps:
                self.global_step = step + 1
                started = time.perf_counter()
                losses = self._step(batches)
                train_seconds += time.perf_counter() - started
                trained_images += config.data.batch_size
                micro_seen += config.optim.accumulate
                step += 1
                seen_images += config.data.batch_size
                if step % run.log_every == 0 or step == config.optim.steps:
                    elapsed = time.perf_counter() - clock
                    losses = mean_across(losses, context)
                    record = {
                        "loss": losses,
                        "lr": config.optim.lr
                        * self.scheduler.lr_lambdas[0](self.scheduler.last_epoch),
                        "images_per_s": seen_images / max(elapsed, 1e-9),
                    }
                    if config.optim.balancing != DEFAULT_BALANCING:
                        record["balancing"] = self.balancer.logged()
                    if config.optim.skip_nonfinite:
                        record["skipped_batches"] = self.skipped_batches
                    log.write(step, record)
                    progress.set_postfix(
                        loss=f"{losses.get('total', float('nan')):.3f}",
                        lr=f"{record['lr']:.2e}",
                        img_s=f"{record['images_per_s']:.1f}",
                    )
                    seen_images, clock = 0, time.perf_counter()
                if run.inspect_every and step % run.inspect_every == 0:
                    log.write(step, self._fusion_record())
                progress.update(1)
                self._stop_if_signalled(step, micro_seen)
                if run.eval_every and step % run.eval_every == 0 and step < config.optim.steps:
                    log.write(step, {"eval": self._evaluate()})
                    self._set_train_mode()
                if (
                    run.checkpoint_every
                    and step % run.checkpoint_every == 0
                    and step < config.optim.steps
                ):
                    self._save(step, micro_seen)
            self._save_once(step, micro_seen)
            self._stop_if_signalled(step, micro_seen)
            # The final checkpoint is safe: signals during the last evaluation act as usual.
            self.stop_signals.restore()
            results = self._evaluate()
            log.write(step, {"eval": results})
        finally:
            self.stop_signals.restore()
            progress.close()
            log.close()
        model_file = checkpoints.checkpoint_dir(self.run_dir, step) / checkpoints.MODEL_FILE
        summary = {
            "run_dir": str(self.run_dir),
            "results": results,
            "checkpoint": str(model_file),
            "step": step,
            "images_per_s": trained_images / train_seconds if train_seconds else None,
        }
        if context.is_main:
            with atomic_write(self.run_dir / RESULTS_FILE) as path:
                Path(path).write_text(json.dumps(summary, indent=2))
        return {**summary, "is_main": context.is_main}

    def _step(self, batches) -> dict[str, float]:
        """One optimizer step over ``accumulate`` micro-batches; the mean unweighted task losses
        of the micro-batches kept.

        A non-finite loss stops the run; with ``optim.skip_nonfinite`` its micro-batch gets no
        backward and the whole step no update (gradients cleared, batch-norm statistics put
        back), though the step and the learning-rate schedule still advance.
        """
        optim = self.config.optim
        accumulate = optim.accumulate
        device = self.context.device
        buffers = self._buffers() if optim.skip_nonfinite else None
        sums: dict[str, float] = {}
        kept = 0
        for micro in range(accumulate):
            batch = {
                key: value.to(device, non_blocking=True) for key, value in next(batches).items()
            }
            # A gradient method's aggregated gradients bypass DDP's hooks: averaged below.
            sync = (
                self.model.no_sync()
                if isinstance(self.model, DistributedDataParallel)
                and (micro < accumulate - 1 or self.balancer.gradient_based)
                else nullcontext()
            )
            with sync:
                loss = compute_loss(
                    self.model,
                    self.network,
                    self.tasks,
                    batch,
                    self.amp_dtype,
                    self.config.run.channels_last,
                    self.balancer,
                )
                culprit = self._nonfinite_part(loss.total, loss.tasks)
                if culprit:
                    self._reject(loss.total, culprit)
                    continue
                self.balancer.backward(loss, self.scaler, accumulate)
            kept += 1
            for name, value in loss.tasks.items():
                sums[name] = sums.get(name, 0.0) + value.item()
            sums["total"] = sums.get("total", 0.0) + loss.total.item()
        if kept == accumulate:
            if self.balancer.gradient_based:
                average_gradients(self.network.parameters(), self.context)
            average_gradients(self.balancer.parameters(), self.context)
            optimizer_step(self.optimizer, self.scaler, self.network, optim.grad_clip)
            self.scheduler.step()
        else:
            self._skip_update(buffers)
        means = {name: value / kept for name, value in sums.items()}
        self.balancer.end_step(means)
        return means

    def _nonfinite_part(self, loss: Tensor, per_task: dict[str, Tensor]) -> str | None:
        """What made the loss NaN / Inf on any process (the same answer on all), or None.

        One all-reduce of a flag per task under DDP, so every rank skips or stops together.
        """
        values = [*per_task.values(), loss]
        flags = torch.stack([~torch.isfinite(value.detach()) for value in values]).int()
        flags = max_across(flags, self.context).tolist()
        if not any(flags):
            return None
        names = [name for name, flag in zip(per_task, flags) if flag]
        if names:
            label = "task" if len(names) == 1 else "tasks"
            return f"{label} {', '.join(repr(name) for name in names)}"
        auxiliary = self.network.auxiliary_loss()
        if auxiliary is not None and not torch.isfinite(auxiliary.detach()):
            name = auxiliary_loss_name(self.network.fusions)
            return f"{name} (auxiliary loss; every task's loss is finite)"
        return "the weighted sum of the task losses (each task's loss is finite)"

    def _reject(self, loss: Tensor, culprit: str) -> None:
        """A non-finite micro-batch: stop with the error, or count it as skipped."""
        value = loss.item()
        shown = value if not torch.isfinite(loss) else "non-finite on another process"
        where = f"the loss became {shown} at step {self.global_step} in {culprit}"
        if not self.config.optim.skip_nonfinite:
            raise NddrError(f"{where} ({self._checkpoint_note()}): {NONFINITE_FIX}")
        if not self.skipped_batches and self.context.is_main:
            print(
                f"warning: {where}; skipping that step's update (optim.skip_nonfinite=true); "
                "log.jsonl counts skipped_batches",
                file=sys.stderr,
            )
        self.skipped_batches += 1
        self._last_skip = where

    def _skip_update(self, buffers: list[Tensor] | None) -> None:
        """Drop the step's gradients and batch-norm statistics; stop when too many steps were
        skipped (the recipe diverges, it is not an odd batch)."""
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            # The schedule follows the step count, skipped steps included: not a misuse.
            warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)`")
            self.scheduler.step()
        if buffers is not None:
            with torch.no_grad():
                for buffer, saved in zip(self.network.buffers(), buffers):
                    buffer.copy_(saved)
        self.skipped_steps += 1
        step = self.global_step
        if self.skipped_steps >= SKIP_CAP_MIN and self.skipped_steps > SKIP_CAP * step:
            raise NddrError(
                f"{self._last_skip}, and {self.skipped_steps} of the {step} steps so far were "
                f"skipped, more than {SKIP_CAP:.0%} ({self._checkpoint_note()}): lower optim.lr "
                "or use run.amp=bf16 instead of fp16"
            )

    def _buffers(self) -> list[Tensor]:
        """A copy of the network's buffers (batch-norm statistics), to undo a skipped step."""
        return [buffer.detach().clone() for buffer in self.network.buffers()]

    def _checkpoint_note(self) -> str:
        if self.last_checkpoint is None:
            return "no checkpoint yet"
        return f"last good checkpoint: {self.last_checkpoint}"

    def _fusion_record(self) -> dict[str, Any]:
        """What each task draws from the others at every fusion layer (``nddr inspect``), or
        nothing for a network without fusion layers."""
        if not len(self.network.fusions):
            return {}
        from nddr.models.analysis import fusion_shares, shares_record

        return {"fusion_shares": shares_record(fusion_shares(self.network))}


def _progress_bar(enabled: bool, total: int, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
