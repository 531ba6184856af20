"""NDDR's per-task outputs: strided views of the fused tensor vs one contiguous copy per task.

The fused [N, K*C, H, W] tensor split on channels gives each task a strided view (for N > 1);
every convolution that reads a strided view copies it, forward and backward. ``NDDR.forward``
copies each block out once instead. This times both against the single-task networks, side by
side in interleaved rounds (as ``nddr bench``), and prints the time ratios.

    python benchmarks/nddr_output_layout.py [--backbone vgg16_lfov] [--size 161] [--repeats 12]
"""

from __future__ import annotations

import argparse
import statistics
import types

import torch

from nddr.benchmark.network import Runner, Settings, plan_workloads, time_runners
from nddr.models.fusion import NDDR
from nddr.training.host_memory import keep_freed_memory


def strided_forward(self: NDDR, features):
    fused = self.activation(self.bn(self.project(features)))
    return list(fused.split(self.channels, dim=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16_lfov")
    parser.add_argument("--size", type=int, default=161)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()
    keep_freed_memory()
    settings = Settings(backbone=args.backbone, size=(args.size, args.size), batch=args.batch)
    device = torch.device("cpu")
    workloads = plan_workloads(["single", "nddr"], 2)
    runners = {w.label: Runner.for_workload(w, settings, device) for w in workloads}
    runners["nddr (contiguous blocks)"] = runners.pop("nddr")
    strided = Runner.for_workload(workloads[-1], settings, device)
    for module in strided.network.modules():
        if isinstance(module, NDDR):
            module.forward = types.MethodType(strided_forward, module)
    runners["nddr (strided views)"] = strided
    times = time_runners(runners, args.repeats, 2)
    singles = [label for label in runners if label.startswith("single:")]
    print(f"{args.backbone}, batch {args.batch} at {args.size}px, median of {args.repeats} rounds")
    for label in runners:
        step = statistics.median(times[label]["train"]) * 1e3
        line = f"{label:28s} train step {step:8.1f} ms"
        if label not in singles:
            rounds = zip(times[label]["train"], *(times[s]["train"] for s in singles))
            ratio = statistics.median(t[0] / sum(t[1:]) for t in rounds)
            line += f"   time ratio to the single-task sum {ratio:.3f}"
        print(line)


if __name__ == "__main__":
    main()
