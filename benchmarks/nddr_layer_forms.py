"""Three ways to compute the NDDR layer at VGG-16's stage ends, timed side by side.

``one_conv`` is ``NDDR.forward``: concatenate, one KC -> KC 1x1 convolution, one batch norm over
KC channels, ReLU, one contiguous copy per task. ``per_task`` runs K KC -> C convolutions on the
concatenation (no output copies); ``no_concat`` sums K^2 C -> C convolutions (no concatenation).
Forward and backward over the five stage ends (batch 2 at 161 px, K = 2), in interleaved rounds;
medians of the per-round ratios to ``one_conv``.

    python benchmarks/nddr_layer_forms.py [--rounds 25]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

K = 2
STAGES = [(64, 81), (128, 41), (256, 21), (512, 11), (512, 11)]


def one_conv(weight, bn, features, c):
    fused = F.relu(F.batch_norm(F.conv2d(torch.cat(features, 1), weight), *bn, True, 0.05, 1e-3))
    return [block.contiguous() for block in fused.split(c, 1)]


def per_task(weight, bn, features, c):
    stacked, (mean, var, gamma, beta) = torch.cat(features, 1), bn
    out = []
    for k in range(K):
        rows = slice(k * c, (k + 1) * c)
        y = F.conv2d(stacked, weight[rows])
        y = F.batch_norm(y, mean[rows], var[rows], gamma[rows], beta[rows], True, 0.05, 1e-3)
        out.append(F.relu(y))
    return out


def no_concat(weight, bn, features, c):
    mean, var, gamma, beta = bn
    out = []
    for k in range(K):
        rows = slice(k * c, (k + 1) * c)
        y = sum(F.conv2d(x, weight[rows, j * c : (j + 1) * c]) for j, x in enumerate(features))
        y = F.batch_norm(y, mean[rows], var[rows], gamma[rows], beta[rows], True, 0.05, 1e-3)
        out.append(F.relu(y))
    return out


FORMS = {"one_conv": one_conv, "per_task": per_task, "no_concat": no_concat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    torch.manual_seed(0)
    layers = {}
    for c, _ in STAGES:
        weight = torch.randn(K * c, K * c, 1, 1, requires_grad=True)
        bn = (
            torch.zeros(K * c),
            torch.ones(K * c),
            torch.ones(K * c, requires_grad=True),
            torch.zeros(K * c, requires_grad=True),
        )
        layers[c] = (weight, bn)
    inputs = {c: [torch.randn(2, c, s, s, requires_grad=True) for _ in range(K)] for c, s in STAGES}
    reference = [one_conv(*layers[64], inputs[64], 64), per_task(*layers[64], inputs[64], 64)]
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(*reference))
    times = {name: [] for name in FORMS}
    order = list(FORMS.items())
    for round_index in range(args.rounds + 3):
        for name, form in order if round_index % 2 == 0 else reversed(order):
            started = time.perf_counter()
            for c, _ in STAGES:
                outputs = form(*layers[c], inputs[c], c)
                sum(output.sum() for output in outputs).backward()
            if round_index >= 3:
                times[name].append(time.perf_counter() - started)
    for name in FORMS:
        ratio = statistics.median(a / b for a, b in zip(times[name], times["one_conv"]))
        median = statistics.median(times[name]) * 1e3
        print(f"{name:10s} forward + backward {median:7.1f} ms, ratio to one_conv {ratio:.3f}")


if __name__ == "__main__":
    main()
