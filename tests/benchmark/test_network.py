from dataclasses import replace

import pytest
import torch

from nddr import build_network
from nddr.benchmark import (
    Settings,
    Workload,
    count_flops,
    format_report,
    plan_workloads,
    run_benchmark,
)
from nddr.benchmark.network import (
    Row,
    Runner,
    bench_targets,
    check_inputs,
    peak_memory,
    single_task_ratios,
    time_runners,
)
from nddr.benchmark.rounds import MIN_ROUNDS
from nddr.errors import NddrError

SMALL = Settings(backbone="tiny", size=(32, 32), batch=2, repeats=2, warmup=1)


def test_plan_expands_single_per_task_and_executions():
    labels = [
        w.label for w in plan_workloads(["single", "multi", "nddr"], 3, ["columns", "grouped"])
    ]
    assert labels == [
        "single:segmentation",
        "single:normals",
        "single:depth",
        "multi",
        "nddr",
        "nddr [grouped]",
    ]
    with pytest.raises(NddrError, match="variant"):
        plan_workloads(["nddr2"], 2)


def test_bench_targets_are_k_dense_tasks():
    targets = bench_targets(4)
    assert list(targets) == ["segmentation", "normals", "depth", "segmentation3"]
    assert all(spec.dense for spec in targets.values())
    with pytest.raises(NddrError, match="--tasks"):
        bench_targets(0)


def test_nddr_adds_exactly_its_one_by_one_convolutions_in_flops():
    settings = Settings(backbone="tiny", size=(64, 64), batch=2)
    singles = [
        Workload(f"s{k}", "single", False, (task,)) for k, task in enumerate(bench_targets(2))
    ]
    nddr = Workload("nddr", "nddr", False, tuple(bench_targets(2)))
    single_train = sum(count_flops(w, settings)[0] for w in singles)
    nddr_train, nddr_inference = count_flops(nddr, settings)
    # tiny: stage widths 16, 32, 64, 64, 64 at 32, 16, 8, 8, 8 pixels; a KC -> KC 1x1 conv costs
    # 2 N (KC)^2 HW forward and twice that backward (input and weight gradients).
    fusion = sum(
        2 * 2 * (2 * c) ** 2 * s * s for c, s in [(16, 32), (32, 16), (64, 8), (64, 8), (64, 8)]
    )
    assert nddr_train - single_train == 3 * fusion
    assert nddr_inference < nddr_train
    grouped = Workload("g", "nddr", False, tuple(bench_targets(2)), "grouped")
    assert count_flops(grouped, settings) == (nddr_train, nddr_inference)


@pytest.mark.parametrize(
    ("variant", "per_pixel"),
    [
        # (KC)^2 / G multiply-adds per pixel, G = 8 lowered to keep 32 channels a group.
        ("nddr_grouped", lambda c: (2 * c) ** 2 // {16: 1, 32: 1, 64: 2}[c]),
        # KC -> r -> KC for the correction, r = max(C / 8, 32) at most C; the per-channel part's
        # K^2 C multiply-adds are elementwise, which the counter leaves out (as cross-stitch's).
        ("nddr_lowrank", lambda c: 2 * (2 * c) * {16: 16, 32: 32, 64: 32}[c]),
    ],
)
def test_efficient_fusion_adds_exactly_its_grouped_and_low_rank_convolutions(variant, per_pixel):
    settings = Settings(backbone="tiny", size=(64, 64), batch=2)
    singles = [
        Workload(f"s{k}", "single", False, (task,)) for k, task in enumerate(bench_targets(2))
    ]
    single_train = sum(count_flops(w, settings)[0] for w in singles)
    fused_train, _ = count_flops(
        Workload(variant, variant, False, tuple(bench_targets(2))), settings
    )
    fusion = sum(
        2 * 2 * per_pixel(c) * s * s for c, s in [(16, 32), (32, 16), (64, 8), (64, 8), (64, 8)]
    )
    assert fused_train - single_train == 3 * fusion


def test_ratios_are_against_the_sum_of_single_task_rows():
    rows = [
        Row("single:a", 1, 100, 40, 1.0, 0.5, 2.0, 4.0, 1000),
        Row("single:b", 1, 100, 40, 3.0, 0.5, 2.0, 4.0, 3000),
        Row("nddr", 2, 210, 84, 4.2, 1.1, 1.0, 2.0, 4100),
    ]
    ratios = single_task_ratios(rows)
    assert ratios["nddr"] == pytest.approx(
        {"time": 1.05, "flops": 1.05, "memory": 1.025, "inference_time": 1.1}
    )
    rows[0].peak_memory_bytes = None
    assert single_task_ratios(rows)["nddr"]["memory"] is None


def test_run_benchmark_times_every_workload_side_by_side():
    workloads = plan_workloads(["single", "nddr"], 2, ["columns", "grouped"])
    report = run_benchmark(SMALL, workloads, measure_memory=False)
    assert [row.label for row in report.rows] == [w.label for w in workloads]
    for row in report.rows:
        assert row.train_step_s > 0 and row.inference_s > 0 and row.parameters > 0
        assert row.train_images_per_s == pytest.approx(2 / row.train_step_s)
    assert set(report.ratios) == {"nddr", "nddr [grouped]"}
    assert report.ratios["nddr"]["flops"] > 1.0
    assert report.settings.threads == torch.get_num_threads()
    table = format_report(report)
    assert "| nddr [grouped] |" in table and "time ratio" in table
    assert "2 rounds are too few for a 95% interval" in table


class _Clock:
    """A runner whose steps take no time: rounds are counted, not timed."""

    device = torch.device("cpu")

    def __init__(self):
        self.calls = 0

    def train_step(self):
        self.calls += 1

    def infer(self):
        pass


def test_rounds_go_on_until_done_or_the_maximum():
    runners = {"a": _Clock(), "b": _Clock()}
    times = time_runners(runners, 3, 1, done=lambda t: len(t["a"]["train"]) >= 5, max_repeats=9)
    assert len(times["a"]["train"]) == 5 and runners["a"].calls == 6
    times = time_runners(runners, 3, 0, done=lambda t: False, max_repeats=9)
    assert len(times["b"]["inference"]) == 9
    assert len(time_runners(runners, 3, 0)["a"]["train"]) == 3


def test_adaptive_rounds_stop_when_precise_and_warn_when_not():
    workloads = plan_workloads(["single", "nddr"], 2)
    adaptive = replace(SMALL, repeats=None, warmup=0, precision=10.0)
    report = run_benchmark(adaptive, workloads, measure_memory=False)
    assert report.rounds == MIN_ROUNDS
    low, high = report.ratios["nddr"]["time_interval"]
    assert low <= report.ratios["nddr"]["time"] <= high
    assert "warning" not in format_report(report)
    strict = replace(adaptive, precision=1e-9, max_repeats=MIN_ROUNDS + 2)
    report = run_benchmark(strict, workloads, measure_memory=False)
    assert report.rounds == MIN_ROUNDS + 2
    assert set(report.wide_intervals()) == {"nddr"}
    warning = format_report(report)
    assert "warning: after 12 rounds the time-ratio intervals are wider than" in warning
    assert "or with --max-repeats " in warning


def test_peak_memory_is_measured_in_a_fresh_process_and_grows_with_the_batch():
    workload = plan_workloads(["single"], 1)[0]
    small = peak_memory(workload, Settings(backbone="tiny", size=(64, 64), batch=1, warmup=0))
    large = peak_memory(workload, Settings(backbone="tiny", size=(64, 64), batch=64, warmup=0))
    assert small is not None and small > 0
    assert large > small + 50 * 2**20


def _refusal(settings, variants=("single", "nddr")):
    with pytest.raises(NddrError) as caught:
        check_inputs(settings, plan_workloads(variants, settings.num_tasks))
    return str(caught.value)


def test_inputs_that_train_pass_the_check():
    check_inputs(SMALL, plan_workloads(["single", "multi", "sluice", "nddr_shortcut"], 2))


def test_a_size_below_the_output_stride_is_refused_with_the_stride():
    message = _refusal(replace(SMALL, size=(4, 32)))
    assert message == (
        "--size 4 32 is too small for tiny: its output stride is 8; use at least --size 8 8"
    )


def test_the_smallest_size_that_runs_is_computed_from_the_backbone():
    message = _refusal(replace(SMALL, backbone="alexnet", size=(16, 16)))
    assert message.endswith("its convolutions and pools need 63x63; use at least --size 63 63")
    network = build_network("alexnet", {"seg": 4}, "nddr").train()
    network(torch.rand(2, 3, 63, 63))
    with pytest.raises(RuntimeError, match="Output size is too small"):
        network(torch.rand(2, 3, 62, 62))


def test_batch_one_in_training_is_refused_before_anything_is_built(monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("built a runner for an input that cannot train")

    monkeypatch.setattr(Runner, "for_workload", no_build)
    settings = replace(SMALL, batch=1, size=(8, 8))
    with pytest.raises(NddrError, match=r"^--batch 1 cannot train .* on tiny at 8x8: .*--batch 2$"):
        run_benchmark(settings, plan_workloads(["nddr"], 2), measure_memory=False)
