"""Deterministic data order and augmentation, so a resumed run sees exactly the same batches.

Each epoch's order is a permutation drawn from (seed, epoch); a global batch is split across
ranks in contiguous slices (rank r of W takes the r-th slice), so W processes together see the
same global batch as one process. Augmentation of sample i in epoch e draws from a generator
seeded by (seed, epoch, i), so it does not depend on workers, ranks or where a run resumed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from nddr.data.base import MultiTaskDataset
from nddr.data.transforms import JointTransform


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix-style), stable across processes and runs."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (value + 0x9E3779B97F4A7C15 + (state << 6) + (state >> 2))) & (2**64 - 1)
        state = (state * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    return state >> 1


class AugmentedDataset(Dataset):
    """A dataset whose sample i in epoch e is augmented with a generator seeded by (seed, e, i)."""

    def __init__(self, dataset: MultiTaskDataset, transform: JointTransform, seed: int) -> None:
        self.dataset = dataset
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        dataset.transform = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(_mix(self.seed, self.epoch, index))
        return self.transform(self.dataset[index], generator)


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches of one epoch, starting at micro-batch ``start``.

    A global batch of ``global_batch`` samples is ``accumulate`` micro-batches per rank of
    ``global_batch / (world_size * accumulate)`` samples each. The last incomplete global batch of
    an epoch is dropped.
    """

    def __init__(
        self,
        num_samples: int,
        global_batch: int,
        seed: int,
        epoch: int,
        rank: int = 0,
        world_size: int = 1,
        accumulate: int = 1,
        start: int = 0,
    ) -> None:
        self.micro = global_batch // (world_size * accumulate)
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.seed, self.epoch = seed, epoch
        self.rank, self.world_size, self.accumulate = rank, world_size, accumulate
        self.start = start

    @property
    def micro_batches_per_epoch(self) -> int:
        return (self.num_samples // self.global_batch) * self.accumulate

    def __len__(self) -> int:
        return max(self.micro_batches_per_epoch - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        order = torch.randperm(self.num_samples, generator=generator).tolist()
        for micro in range(self.start, self.micro_batches_per_epoch):
            batch, part = divmod(micro, self.accumulate)
            base = batch * self.global_batch + part * self.micro * self.world_size
            begin = base + self.rank * self.micro
            yield order[begin : begin + self.micro]


class ShardSampler(Sampler[int]):
    """Evaluation order: every sample exactly once over all ranks (rank r takes r, r + W, ...)."""

    def __init__(self, num_samples: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, num_samples, world_size))

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)
