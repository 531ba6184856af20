"""The parts of a training run, built from its config: shared by the trainer and ``nddr bench``."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from nddr.data import build_dataset
from nddr.data.transforms import JointTransform
from nddr.models import MultiTaskNetwork, build_network, init_from_single_task
from nddr.tasks import Task
from nddr.training.config import Config
from nddr.training.preemption import ignore_stop_signals
from nddr.training.sampling import AugmentedDataset, GlobalBatchSampler


def training_set(config: Config) -> AugmentedDataset:
    """The train split with the config's augmentation, seeded per (seed, epoch, sample)."""
    data = config.data
    dataset = build_dataset(data.name, data.root, "train", tasks=data.tasks, **data.options)
    augment = JointTransform(
        dataset.targets,
        train=True,
        crop_size=data.crop_size,
        scale_range=data.scale_range,
        flip=data.flip,
    )
    return AugmentedDataset(dataset, augment, seed=config.run.seed)


def training_loader(
    train_set: AugmentedDataset,
    config: Config,
    micro_seen: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """This rank's micro-batches of the epoch holding micro-batch ``micro_seen``, from there on."""
    data, optim = config.data, config.optim
    per_epoch = GlobalBatchSampler(
        len(train_set),
        global_batch=data.batch_size,
        seed=0,
        epoch=0,
        world_size=world_size,
        accumulate=optim.accumulate,
    ).micro_batches_per_epoch
    epoch, start = divmod(micro_seen, per_epoch)
    train_set.set_epoch(epoch)
    sampler = GlobalBatchSampler(
        len(train_set),
        global_batch=data.batch_size,
        seed=config.run.seed,
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        accumulate=optim.accumulate,
        start=start,
    )
    return DataLoader(
        train_set,
        batch_sampler=sampler,
        num_workers=data.workers,
        pin_memory=pin_memory,
        generator=torch.Generator(),
        worker_init_fn=ignore_stop_signals,
    )


def training_batches(
    train_set: AugmentedDataset,
    config: Config,
    micro_seen: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> Iterator[dict[str, Tensor]]:
    """This rank's micro-batches forever, epoch after epoch, from micro-batch ``micro_seen`` on."""
    while True:
        for batch in training_loader(train_set, config, micro_seen, rank, world_size, pin_memory):
            micro_seen += 1
            yield batch


def training_network(
    config: Config, tasks: list[Task], initialise: bool = True
) -> MultiTaskNetwork:
    """The network of ``config.model`` for ``tasks``, initialised (backbone weights,
    ``model.init_from``) and set to run as configured; ``initialise=False`` gives its bare
    structure, e.g. to check a plan on the meta device."""
    model = config.model
    network = build_network(
        model.backbone,
        [task.head_spec() for task in tasks],
        model.variant,
        shortcut=model.shortcut,
        backbone_weights=model.backbone_weights if initialise else None,
        backbone_options=model.backbone_options,
        fusion_options=model.fusion_options,
        head_options=model.head_options,
        bn_momentum=model.bn_momentum,
        bn_eps=model.bn_eps,
    )
    if not initialise:
        return network
    if model.init_from:
        init_from_single_task(network, model.init_from)
    return network.set_execution(model.execution)
