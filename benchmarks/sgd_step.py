"""One SGD step (momentum and weight decay, as the training loop's) three ways: PyTorch's
per-tensor loop, its ``foreach`` form and its fused kernel, on weights shaped like a ResNet-50
NDDR pair's largest (the 4096² and 2048² 1x1 fusion weights and six 512² 3x3 ones, 31 M
parameters). The training loop uses the fused kernel where the device has it
(:func:`nddr.training.optimizer.training_optimizer`).

    python benchmarks/sgd_step.py [--repeats 8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nddr.training.host_memory import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    keep_freed_memory()
    torch.manual_seed(0)
    shapes = [(4096, 4096, 1, 1), (2048, 2048, 1, 1)] + [(512, 512, 3, 3)] * 6
    parameters = [torch.randn(shape, requires_grad=True) for shape in shapes]
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter)
    count = sum(p.numel() for p in parameters)
    print(f"SGD step on {count / 1e6:.1f} M parameters, {torch.get_num_threads()} threads")
    print("| implementation | step (ms), median |\n| --- | ---: |")
    for name, options in (("loop", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        optimizer = torch.optim.SGD(parameters, lr=1e-3, momentum=0.9, weight_decay=5e-4, **options)
        for _ in range(2):
            optimizer.step()
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            optimizer.step()
            times.append(time.perf_counter() - started)
        print(f"| {name} | {statistics.median(times) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
