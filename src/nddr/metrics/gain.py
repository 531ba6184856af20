"""Multi-task gain Delta_m (Maninis et al., CVPR 2019)."""

from __future__ import annotations

from collections.abc import Mapping

from nddr.errors import NddrError

Results = Mapping[str, Mapping[str, float]]


def multi_task_gain(
    results: Results, single_task: Results, higher_is_better: Mapping[str, Mapping[str, bool]]
) -> float:
    """Delta_m in %: the mean over every (task, metric) of the signed relative change.

    Delta_m = 1/T sum_i (-1)^{l_i} (M_i - S_i) / S_i * 100, with S_i the single-task result and
    l_i = 1 when lower is better, so a positive Delta_m is a gain. Every metric named in
    ``higher_is_better`` counts once.
    """
    changes = []
    for task, directions in higher_is_better.items():
        for metric, higher in directions.items():
            try:
                value, base = float(results[task][metric]), float(single_task[task][metric])
            except KeyError as error:
                raise NddrError(
                    f"multi-task gain needs {task}/{metric} in both the results and the "
                    f"single-task results (missing {error})"
                ) from None
            if base == 0:
                raise NddrError(
                    f"single-task {task}/{metric} is 0: the relative change is undefined"
                )
            sign = 1.0 if higher else -1.0
            changes.append(sign * (value - base) / abs(base))
    if not changes:
        raise NddrError("multi-task gain needs at least one metric")
    return 100.0 * sum(changes) / len(changes)
