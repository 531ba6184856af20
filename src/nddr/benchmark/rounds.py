"""How many timed rounds ``nddr bench`` runs, and how sure a median of per-round ratios is.

A time ratio is measured once per round (the workload and the single-task networks timed back to
back, so drift of the machine hits both); its figure is the median over rounds, with a
distribution-free confidence interval for that median from the order statistics (the binomial
sign-test interval: no assumption on the shape of the noise, which on a shared machine is
skewed). By default the rounds go on, past a minimum, until every interval is within
:data:`PRECISION` of its median, or a maximum is reached; the report says when an interval stayed
wider. Torch-free, so the command line can show these defaults.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_ROUNDS = 10
"""Timed rounds before the intervals are first looked at."""
MAX_ROUNDS = 200
"""Timed rounds at most, when the intervals stay wider than :data:`PRECISION`. On the 2-core
virtual machines this project is tested on, a quiet one's steps still spread by ±5-10 % round to
round (its host's other guests), and by how much varies from day to day: VGG-16-LFOV's ratios
reached ±1.5 % after 35 rounds one day and were at ±1.9-2.5 % after 60 on another, about 100-170
rounds' worth (a half-width shrinks as one over the root of the rounds)."""
PRECISION = 0.015
"""Relative half-width (±1.5 %) each time ratio's interval must reach."""
CONFIDENCE = 0.95
"""Confidence of the intervals."""


@dataclass(frozen=True)
class Interval:
    """A median with the order-statistics interval that covers the true median with probability
    ``confidence`` (at least; exactly the binomial coverage of the chosen ranks)."""

    median: float
    low: float
    high: float
    confidence: float

    @property
    def relative_half_width(self) -> float:
        """The larger distance from the median to an end, over the median."""
        if self.median == 0:
            return math.inf
        return max(self.high - self.median, self.median - self.low) / abs(self.median)


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The median of ``values`` and its distribution-free interval at ``confidence``.

    For n sorted values the interval is [x_(r), x_(n+1-r)] with the largest r whose binomial
    coverage 1 - 2 P(B <= r - 1), B ~ Bin(n, 1/2), is at least ``confidence``; with too few values
    for that (n < 6 at 95 %) it is the whole range, at the coverage the range has.
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    n = len(ordered)
    rank = 0
    for candidate in range(1, n // 2 + 1):
        if _coverage(n, candidate) >= confidence:
            rank = candidate
        else:
            break
    if rank == 0:
        rank = 1
    return Interval(
        statistics.median(ordered), ordered[rank - 1], ordered[n - rank], _coverage(n, rank)
    )


def _coverage(n: int, rank: int) -> float:
    """P(x_(rank) <= median <= x_(n+1-rank)) for n draws of a continuous variable."""
    below = sum(math.comb(n, k) for k in range(rank)) / 2**n
    return 1.0 - 2.0 * below


def rounds_needed(rounds: int, half_width: float, precision: float = PRECISION) -> int:
    """About how many rounds bring an interval of relative ``half_width`` after ``rounds`` to
    ``precision``: its width shrinks as one over the square root of the rounds."""
    return math.ceil(rounds * (half_width / precision) ** 2)


def precise_enough(intervals: Sequence[Interval], precision: float = PRECISION) -> bool:
    """Whether every interval is within ``precision`` of its median."""
    return all(interval.relative_half_width <= precision for interval in intervals)
