"""Benchmarks that print figures: network speed, memory and FLOPs; data pipeline throughput."""

from nddr.benchmark.network import (
    Report,
    Settings,
    Workload,
    count_flops,
    format_report,
    plan_workloads,
    run_benchmark,
)
from nddr.benchmark.pipeline import PipelineReport, format_pipeline_report, run_pipeline_benchmark

__all__ = [
    "PipelineReport",
    "Report",
    "Settings",
    "Workload",
    "count_flops",
    "format_pipeline_report",
    "format_report",
    "plan_workloads",
    "run_benchmark",
    "run_pipeline_benchmark",
]
