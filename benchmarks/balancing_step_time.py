"""The training-step cost of each loss-balancing method (``optim.balancing``) against ``fixed``.

For the multi-task baseline and NDDR-CNN (``tiny`` backbone, 2 tasks: segmentation and normals,
the CPU suite's batch and image size by default), every method's network is built from the same
seed and timed in one process in interleaved rounds (``nddr bench``'s
:func:`~nddr.benchmark.network.time_runners`: every method once per round, the order reversed
every other round); a step is the training loop's own (forward, losses, the method's backward,
SGD step). Prints the median step per method and its ratio to ``fixed`` of the same variant.

    python benchmarks/balancing_step_time.py --repeats 10
"""

from __future__ import annotations

import argparse
import statistics

import torch

from nddr.benchmark.network import Runner, bench_targets, random_batch, time_runners
from nddr.models import build_network
from nddr.tasks import build_tasks
from nddr.training.balancing import BALANCING, DEFAULT_BALANCING
from nddr.training.config import build_config


def runners(variant: str, methods: list[str], args: argparse.Namespace) -> dict[str, Runner]:
    """One runner per method: the same network weights, batch and recipe."""
    targets = bench_targets(2)
    batch = random_batch(targets, args.batch, (args.size, args.size))
    built = {}
    for method in methods:
        torch.manual_seed(0)
        tasks = build_tasks(targets)
        network = build_network(args.backbone, [task.head_spec() for task in tasks], variant)
        optim = build_config({}, [f"optim.balancing={method}"]).optim
        built[method] = Runner(network, tasks, batch, torch.device("cpu"), optim=optim)
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=list(BALANCING), choices=list(BALANCING))
    args = parser.parse_args()
    methods = [DEFAULT_BALANCING, *(m for m in args.methods if m != DEFAULT_BALANCING)]
    medians: dict[str, dict[str, float]] = {}
    for variant in ("multi", "nddr"):
        times = time_runners(
            runners(variant, methods, args), args.repeats, args.warmup, kinds=("train",)
        )
        medians[variant] = {method: statistics.median(times[method]["train"]) for method in methods}
    print(
        f"{args.backbone}, 2 tasks, batch {args.batch} at {args.size}x{args.size}, cpu "
        f"({torch.get_num_threads()} threads); median of {args.repeats} after {args.warmup} "
        "warm-up rounds\n"
    )
    print("| method | multi step (ms) | multi / fixed | nddr step (ms) | nddr / fixed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for method in methods:
        cells = []
        for variant in ("multi", "nddr"):
            step = medians[variant][method]
            cells += [f"{1000 * step:.1f}", f"{step / medians[variant][DEFAULT_BALANCING]:.2f}"]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
