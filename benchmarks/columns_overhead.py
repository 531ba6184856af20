"""How much of a fused network's time over the single-task networks is its fusion layers.

Times, in interleaved rounds (the order reversed every other round), training steps of the K
single-task networks, of a fused variant and of the same network with its fusion layers removed:
the K columns run stage by stage in one network, as the fused one runs them, with nothing
between the stages. The bare columns' ratio to the single-task sum is what running K columns
in one network costs by itself (one optimizer step over all of them, the stage-by-stage order);
the fused variant's ratio over it is what its layers add. Ratios: medians of the per-round
ratios with their 95 % interval (:mod:`nddr.benchmark.rounds`).

    python benchmarks/columns_overhead.py [--backbone resnet50] [--size 129] [--variant cross_stitch]
        [--rounds 30]
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from nddr.benchmark.network import (
    Runner,
    Settings,
    plan_workloads,
    round_ratio_intervals,
    time_runners,
)
from nddr.benchmark.rounds import median_interval
from nddr.training.host_memory import keep_freed_memory

BARE = "columns (no fusion)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=129)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--variant", default="cross_stitch")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    keep_freed_memory()
    torch.manual_seed(0)
    settings = Settings(backbone=args.backbone, size=(args.size, args.size), batch=args.batch)
    device = torch.device("cpu")
    workloads = plan_workloads(["single", args.variant], 2)
    runners = {w.label: Runner.for_workload(w, settings, device) for w in workloads}
    bare = Runner.for_workload(workloads[-1], settings, device)
    bare.network.fusions = nn.ModuleList()
    runners[BARE] = bare
    times = time_runners(runners, repeats=args.rounds, warmup=2, kinds=("train",))
    print(
        f"{args.variant} on {args.backbone}, batch {args.batch} at {args.size}px, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds: training-step time ratios"
    )
    for label, ratio in round_ratio_intervals(list(runners), times).items():
        print(
            f"  {label} / single-task sum: {ratio.median:.3f} [{ratio.low:.3f}, {ratio.high:.3f}]"
        )
    fused, bare_times = times[args.variant]["train"], times[BARE]["train"]
    layers = median_interval([f / b for f, b in zip(fused, bare_times)])
    print(f"  {args.variant} / {BARE}: {layers.median:.3f} [{layers.low:.3f}, {layers.high:.3f}]")


if __name__ == "__main__":
    main()
