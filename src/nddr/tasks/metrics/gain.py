"""Multi-task gain Delta_m: the signed relative change against single-task results, in %.

Two conventions are in use; they differ when tasks have different numbers of metrics (e.g. five
normal metrics against two segmentation ones), so a caller names the one it reports.
"""

from __future__ import annotations

from collections.abc import Mapping

from nddr.errors import NddrError, unknown_choice

Results = Mapping[str, Mapping[str, float]]

GAIN_CONVENTIONS: dict[str, str] = {
    "per_metric": "mean over every (task, metric): each metric counts once (Navon et al., "
    '"Multi-Task Learning as a Bargaining Game", ICML 2022)',
    "per_task": "mean over a task's metrics, then over tasks: each task counts once (Maninis et "
    'al., "Attentive Single-Tasking of Multiple Tasks", CVPR 2019; LibMTL)',
}
"""Each Delta_m convention of :func:`multi_task_gain`, with what it averages and its source."""


def multi_task_gain(
    results: Results,
    single_task: Results,
    higher_is_better: Mapping[str, Mapping[str, bool]],
    *,
    convention: str,
) -> float:
    """Delta_m in %: the mean signed relative change (-1)^{l} (M - S) / S * 100 of the metrics.

    S is the single-task result and l = 1 when lower is better, so a positive Delta_m is a gain.
    The metrics are those named in ``higher_is_better`` (task -> metric -> direction);
    ``convention`` (:data:`GAIN_CONVENTIONS`) says how they are averaged: ``"per_metric"``
    over all of them, ``"per_task"`` within each task first, then over tasks.
    """
    if convention not in GAIN_CONVENTIONS:
        raise unknown_choice("Delta_m convention", convention, GAIN_CONVENTIONS)
    per_task = {
        task: [
            _change(results, single_task, task, metric, higher)
            for metric, higher in directions.items()
        ]
        for task, directions in higher_is_better.items()
        if directions
    }
    if not per_task:
        raise NddrError("multi-task gain needs at least one metric")
    if convention == "per_metric":
        changes = [change for task_changes in per_task.values() for change in task_changes]
    else:
        changes = [sum(task_changes) / len(task_changes) for task_changes in per_task.values()]
    return 100.0 * sum(changes) / len(changes)


def _change(results: Results, single_task: Results, task: str, metric: str, higher: bool) -> float:
    """The signed relative change of one metric (positive: better than single-task)."""
    try:
        value, base = float(results[task][metric]), float(single_task[task][metric])
    except KeyError as error:
        raise NddrError(
            f"multi-task gain needs {task}/{metric} in both the results and the single-task "
            f"results (missing {error})"
        ) from None
    if base == 0:
        raise NddrError(f"single-task {task}/{metric} is 0: the relative change is undefined")
    sign = 1.0 if higher else -1.0
    return sign * (value - base) / abs(base)
