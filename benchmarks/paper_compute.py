"""Compute of the paper's tables: training FLOPs per run and table, counted on meta tensors.

For every run that ``nddr reproduce TABLE`` would execute, builds its network on the meta device
(no memory, no data), counts the FLOPs of one training step (forward + backward at the config's
crop and global batch) with ``torch.utils.flop_counter``, and multiplies by ``optim.steps``.
GPU hours are an estimate at an assumed sustained rate (``--tflops``, default 100 TFLOP/s: about
a third of an H100's dense bf16 peak), not a measurement.

    python benchmarks/paper_compute.py [--tflops 100] [--tables table1 table4]
"""

from __future__ import annotations

import argparse

import torch

from nddr import HeadSpec, build_network
from nddr.benchmark.network import network_flops
from nddr.reproduce import plan
from nddr.training.config import load_config

HEADS = {
    "segmentation": HeadSpec("segmentation", 40),
    "normals": HeadSpec("normals", 3),
    "age": HeadSpec("age", 100, dense=False),
    "gender": HeadSpec("gender", 2, dense=False),
}


def step_flops(config) -> float:
    """FLOPs of one training step of ``config`` (forward and backward, global batch)."""
    size = config.data.crop_size or config.data.options.get("image_size", 224)
    with torch.device("meta"):
        network = build_network(
            config.model.backbone,
            [HEADS[task] for task in config.data.tasks],
            config.model.variant,
            shortcut=config.model.shortcut,
            backbone_options=config.model.backbone_options,
        )
        train_flops, _ = network_flops(network, torch.empty(config.data.batch_size, 3, size, size))
    return train_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflops", type=float, default=100.0, help="assumed sustained TFLOP/s")
    parser.add_argument(
        "--tables", nargs="*", default=[*(f"table{n}" for n in range(1, 8)), "tableS1"]
    )
    args = parser.parse_args()
    cache: dict[str, float] = {}
    print("| table | runs | training PFLOP | est. GPU hours |")
    print("| --- | --- | --- | --- |")
    for table in args.tables:
        runs = plan(table)
        total = 0.0
        for run in runs:
            config = load_config(run.config, run.overrides)
            key = str(run.config)
            if key not in cache:
                cache[key] = step_flops(config) * config.optim.steps
            total += cache[key]
        hours = total / (args.tflops * 1e12) / 3600
        print(f"| {table} | {len(runs)} | {total / 1e15:,.0f} | {hours:.1f} |")


if __name__ == "__main__":
    main()
