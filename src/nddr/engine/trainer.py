"""The one training loop for every variant: the paper's recipe (§4.2) on any dataset of tasks.

SGD with momentum, poly learning-rate decay over a step budget, the parameter groups of
:func:`nddr.parameter_groups`, per-task loss weights, gradient accumulation, periodic evaluation,
atomic checkpoints with exact resume, JSONL + TensorBoard logs, a progress bar; DDP under
``torchrun`` (only rank 0 writes), SyncBN, AMP (bf16 / fp16), ``torch.compile``, channels-last.
"""

from __future__ import annotations

import json
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from nddr.config import Config
from nddr.data import build_dataset
from nddr.data.transforms import JointTransform
from nddr.engine import checkpoint as checkpoints
from nddr.engine.build import training_loader, training_network, training_set
from nddr.engine.distributed import Context, barrier, mean_across, setup, teardown
from nddr.engine.evaluate import evaluate
from nddr.engine.host_memory import keep_freed_memory
from nddr.engine.log import RunLog
from nddr.engine.sampling import ShardSampler
from nddr.engine.step import compute_loss, optimizer_step
from nddr.errors import NddrError
from nddr.io import atomic_write
from nddr.network import MultiTaskNetwork, load_weights
from nddr.param_groups import parameter_groups
from nddr.tasks import Task, build_tasks

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def train(config: Config, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) the experiment ``config``; returns the run folder, the final test
    metrics per task and the final model file."""
    if config.run.keep_freed_memory:
        keep_freed_memory()
    context = setup(config.run.device)
    try:
        return Trainer(config, context, resume).fit()
    finally:
        teardown(context)


def poly_schedule(steps: int, power: float):
    """The poly decay of DeepLab and the paper: lr = base * (1 - step / steps) ** power."""
    return lambda step: max(1.0 - step / steps, 0.0) ** power


class Trainer:
    """Builds data, network and optimizer from a config, then runs :meth:`fit`."""

    def __init__(self, config: Config, context: Context, resume: bool = False) -> None:
        self.config, self.context, self.resume = config, context, resume
        self.run_dir = config.run_dir
        torch.manual_seed(config.run.seed)
        random.seed(config.run.seed)
        self._check_run_dir()
        self._build_data()
        self._build_network()
        self._build_optimizer()

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
        unknown = set(optim.loss_weights) - set(targets)
        if unknown:
            raise NddrError(
                f"optim.loss_weights names {sorted(unknown)[0]!r}, not a task of {data.name}: "
                f"use {', '.join(targets)}"
            )
        self.tasks: list[Task] = build_tasks(targets, optim.loss_weights)
        test_set.transform = JointTransform(test_set.targets, False)
        if len(self.train_set) < data.batch_size:
            raise NddrError(
                f"{data.name} train split has {len(self.train_set)} samples, fewer than data.batch_size {data.batch_size}"
            )
        self.test_loader = DataLoader(
            test_set,
            batch_size=data.eval_batch_size,
            sampler=ShardSampler(len(test_set), context.rank, context.world_size),
            num_workers=data.workers,
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
        optim = self.config.optim
        groups = parameter_groups(
            self.network,
            optim.lr,
            optim.weight_decay,
            optim.fusion_lr_mult,
            optim.classifier_lr_mult,
            optim.classifier_bias_lr_mult,
        )
        self.optimizer = torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum)
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

    def _loader(self, micro_seen: int) -> DataLoader:
        context = self.context
        return training_loader(
            self.train_set,
            self.config,
            micro_seen,
            context.rank,
            context.world_size,
            pin_memory=context.device.type == "cuda",
        )

    def _batches(self, micro_seen: int):
        """Micro-batches forever, epoch after epoch, from micro-batch ``micro_seen`` on."""
        while True:
            for batch in self._loader(micro_seen):
                micro_seen += 1
                yield batch

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
        checkpoints.set_rng_state(state["rng"])
        return int(state["step"]), int(state["micro_seen"])

    def _save(self, step: int, micro_seen: int) -> None:
        if self.context.is_main:
            trainer_state = {
                "step": step,
                "micro_seen": micro_seen,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": checkpoints.rng_state(),
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
        config, context = self.config, self.context
        run = config.run
        step, micro_seen = self._restore() if self.resume else (0, 0)
        if context.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.run_dir / "config.yaml") as path:
                Path(path).write_text(config.to_yaml())
        log = RunLog(self.run_dir, step, context.is_main)
        progress = _progress_bar(run.progress and context.is_main, config.optim.steps, step)
        batches = self._batches(micro_seen)
        self._set_train_mode()
        seen_images, clock = 0, time.perf_counter()
        trained_images, train_seconds = 0, 0.0
        try:
            while step < config.optim.steps:
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
                    record.update(self._fusion_record(step))
                    log.write(step, record)
                    progress.set_postfix(
                        loss=f"{losses['total']:.3f}",
                        lr=f"{record['lr']:.2e}",
                        img_s=f"{record['images_per_s']:.1f}",
                    )
                    seen_images, clock = 0, time.perf_counter()
                progress.update(1)
                if run.eval_every and step % run.eval_every == 0 and step < config.optim.steps:
                    log.write(step, {"eval": self._evaluate()})
                    self._set_train_mode()
                if (
                    run.checkpoint_every
                    and step % run.checkpoint_every == 0
                    and step < config.optim.steps
                ):
                    self._save(step, micro_seen)
            self._save(step, micro_seen)
            results = self._evaluate()
            log.write(step, {"eval": results})
        finally:
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
            with atomic_write(self.run_dir / "results.json") as path:
                Path(path).write_text(json.dumps(summary, indent=2))
        return {**summary, "is_main": context.is_main}

    def _step(self, batches) -> dict[str, float]:
        """One optimizer step over ``accumulate`` micro-batches; the unweighted task losses."""
        accumulate = self.config.optim.accumulate
        device = self.context.device
        totals: dict[str, float] = {}
        for micro in range(accumulate):
            batch = {
                key: value.to(device, non_blocking=True) for key, value in next(batches).items()
            }
            sync = (
                self.model.no_sync()
                if isinstance(self.model, DistributedDataParallel) and micro < accumulate - 1
                else nullcontext()
            )
            with sync:
                loss, per_task = compute_loss(
                    self.model,
                    self.network,
                    self.tasks,
                    batch,
                    self.amp_dtype,
                    self.config.run.channels_last,
                )
                if not torch.isfinite(loss):
                    raise NddrError(
                        f"the loss became {loss.item()} at this step: lower optim.lr or use run.amp=bf16 "
                        "instead of fp16; the last checkpoint is intact"
                    )
                self.scaler.scale(loss / accumulate).backward()
            for name, value in per_task.items():
                totals[name] = totals.get(name, 0.0) + value.item() / accumulate
            totals["total"] = totals.get("total", 0.0) + loss.item() / accumulate
        optimizer_step(self.optimizer, self.scaler, self.network, self.config.optim.grad_clip)
        self.scheduler.step()
        return totals

    def _fusion_record(self, step: int) -> dict[str, Any]:
        every = self.config.run.inspect_every
        if not every or step % every or self.config.model.variant != "nddr":
            return {}
        try:
            from nddr.analysis import nddr_shares, shares_record
        except ImportError:
            return {}
        return {"nddr_shares": shares_record(nddr_shares(self.network))}


def _progress_bar(enabled: bool, total: int, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
