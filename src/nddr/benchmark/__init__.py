"""Benchmarks that print figures: network speed, memory and FLOPs; data pipeline throughput.

The torch-backed names load on first access, so the command line reads the round defaults of
:mod:`nddr.benchmark.rounds` without importing torch.
"""

from nddr.lazy import lazy_exports

_LAZY = {
    "PipelineReport": "nddr.benchmark.pipeline",
    "Report": "nddr.benchmark.network",
    "Settings": "nddr.benchmark.network",
    "Workload": "nddr.benchmark.network",
    "count_flops": "nddr.benchmark.network",
    "format_pipeline_report": "nddr.benchmark.pipeline",
    "format_report": "nddr.benchmark.network",
    "plan_workloads": "nddr.benchmark.network",
    "run_benchmark": "nddr.benchmark.network",
    "run_pipeline_benchmark": "nddr.benchmark.pipeline",
}

__getattr__ = lazy_exports(__name__, _LAZY)
"""The benchmark functions and reports, imported on first access."""


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = sorted(_LAZY)
