"""Where a fused training step spends the time the single-task columns do not: per operator.

Profiles training steps (forward, loss, backward, optimizer step: ``nddr bench``'s runner) of the
K single-task networks and of a fused variant with ``torch.profiler``, sums each operator's self
CPU time per step, and prints the operators by the time the fused step adds over the columns'.

    python benchmarks/fusion_profile.py [--backbone vgg16_lfov] [--size 161] [--variant nddr]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from nddr.benchmark.network import Runner, Settings, plan_workloads
from nddr.training.host_memory import keep_freed_memory


def self_times(runner: Runner, steps: int) -> dict[str, float]:
    """Self CPU milliseconds per training step of every operator the runner's step calls."""
    runner.train_step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            runner.train_step()
    totals: dict[str, float] = defaultdict(float)
    for event in profiler.key_averages():
        totals[event.key] += event.self_cpu_time_total / 1e3 / steps
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16_lfov")
    parser.add_argument("--size", type=int, default=161)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--variant", default="nddr")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    keep_freed_memory()
    torch.manual_seed(0)
    settings = Settings(backbone=args.backbone, size=(args.size, args.size), batch=args.batch)
    device = torch.device("cpu")
    workloads = plan_workloads(["single", args.variant], 2)
    columns: dict[str, float] = defaultdict(float)
    for workload in workloads[:-1]:
        for name, ms in self_times(
            Runner.for_workload(workload, settings, device), args.steps
        ).items():
            columns[name] += ms
    fused = self_times(Runner.for_workload(workloads[-1], settings, device), args.steps)
    names = sorted(set(columns) | set(fused), key=lambda n: columns.get(n, 0) - fused.get(n, 0))
    total_columns, total_fused = sum(columns.values()), sum(fused.values())
    print(
        f"{args.variant} on {args.backbone}, batch {args.batch} at {args.size}px, "
        f"{torch.get_num_threads()} threads: self CPU ms per training step"
    )
    print(f"| operator | columns | {args.variant} | added |")
    print("| --- | ---: | ---: | ---: |")
    for name in names[: args.top]:
        before, after = columns.get(name, 0.0), fused.get(name, 0.0)
        print(f"| {name} | {before:.1f} | {after:.1f} | {after - before:+.1f} |")
    print(
        f"| all | {total_columns:.1f} | {total_fused:.1f} | {total_fused - total_columns:+.1f} "
        f"({total_fused / total_columns:.3f}x) |"
    )


if __name__ == "__main__":
    main()
