"""The medians ``nddr bench`` reports and how sure they are: order-statistics intervals."""

import numpy as np
import pytest
from scipy.stats import binom

from nddr.benchmark.rounds import Interval, median_interval, precise_enough, rounds_needed


def test_ten_rounds_give_the_second_and_ninth_values():
    interval = median_interval([float(v) for v in (7, 1, 9, 3, 5, 10, 2, 8, 4, 6)])
    assert (interval.median, interval.low, interval.high) == (5.5, 2.0, 9.0)
    assert interval.confidence == pytest.approx(1 - 2 * binom.cdf(1, 10, 0.5))


@pytest.mark.parametrize("n", [6, 10, 17, 30, 60])
def test_ranks_are_the_narrowest_that_keep_95_percent(n):
    values = list(range(n))
    interval = median_interval(values)
    rank = int(interval.low) + 1
    assert interval.high == n - rank
    assert 1 - 2 * binom.cdf(rank - 1, n, 0.5) >= 0.95
    assert 1 - 2 * binom.cdf(rank, n, 0.5) < 0.95


def test_too_few_values_give_the_whole_range_at_its_coverage():
    interval = median_interval([3.0, 1.0, 2.0, 5.0, 4.0])
    assert (interval.low, interval.high) == (1.0, 5.0)
    assert interval.confidence == pytest.approx(1 - 2 / 2**5)
    assert median_interval([2.0]) == Interval(2.0, 2.0, 2.0, 0.0)


def test_interval_covers_the_median_of_skewed_noise_at_least_as_often_as_stated():
    rng = np.random.default_rng(0)
    true_median = 1.0  # lognormal(0, s) has median exp(0)
    trials = 2000
    hits = sum(
        (lambda i: i.low <= true_median <= i.high)(
            median_interval(rng.lognormal(0.0, 0.3, 15).tolist())
        )
        for _ in range(trials)
    )
    assert hits / trials >= 0.95 - 0.015


def test_precision_is_the_larger_side_over_the_median():
    interval = Interval(1.0, 0.99, 1.02, 0.95)
    assert interval.relative_half_width == pytest.approx(0.02)
    assert precise_enough([interval], 0.02 + 1e-12)
    assert not precise_enough([interval, Interval(1.0, 1.0, 1.0, 0.95)], 0.015)
    with pytest.raises(ValueError):
        median_interval([])


def test_rounds_needed_follow_one_over_the_root_of_the_rounds():
    assert rounds_needed(60, 0.25, 0.125) == 240
    assert rounds_needed(40, 0.125, 0.125) == 40
    assert rounds_needed(10, 0.016, 0.015) == 12
