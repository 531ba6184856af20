"""``nddr bench`` through the command line: figures as JSON, and one-line errors."""

import json

import pytest

from nddr.cli import main

SMALL = ["--backbone", "tiny", "--size", "32", "32", "--repeats", "1", "--warmup", "0"]


def test_bench_prints_every_row_and_ratio_as_json(capsys):
    argv = ["bench", *SMALL, "--variants", "single", "nddr", "nddr_shortcut", "--no-memory"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    labels = [row["label"] for row in report["rows"]]
    assert labels == ["single:segmentation", "single:normals", "nddr", "nddr_shortcut"]
    assert set(report["ratios"]) == {"nddr", "nddr_shortcut"}
    assert report["ratios"]["nddr"]["flops"] > 1
    assert report["settings"]["size"] == [32, 32] and report["device"] == "cpu"


def test_bench_table_has_memory_and_grouped_rows(capsys):
    argv = ["bench", *SMALL, "--variants", "single", "nddr", "--execution", "columns", "grouped"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| nddr [grouped] |" in out and "peak memory (MiB)" in out and "time ratio" in out
    assert "n/a" not in out


def test_bench_data_reports_headroom(capsys):
    overrides = [
        "data.options={size: 32, num_images: 24}",
        "data.crop_size=32",
        "data.batch_size=4",
        "model.backbone_options={width: 4}",
    ]
    assert main(["bench", "--data", *overrides, "--batches", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "scenes" and report["workers"] == 0
    assert report["headroom"] == pytest.approx(
        report["samples_per_s"] / report["train_images_per_s"]
    )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--variants", "nddr2"], "unknown variant 'nddr2'"),
        (["--backbone", "vgg17"], "vgg17"),
        (["--batch", "0"], "--batch must be at least 1"),
        (["--size", "4", "4"], "--size 4 4 is too small"),
        (["--batch", "1", "--size", "8", "8"], "batch norm needs more than one value per channel"),
        (["--backbone", "alexnet", "--size", "16", "16"], "use at least --size 63 63"),
        (["--tasks", "0"], "--tasks must be at least 1"),
        (["--precision", "0"], "--precision is a fraction such as 0.015, got 0.0"),
        (["--max-repeats", "3"], "--max-repeats must be at least 10, got 3"),
        (["config.yaml"], "a config is read only with --data"),
        (["--data", "optim.stepz=3"], "optim.stepz"),
        (["--data", "missing.yaml"], "missing.yaml"),
        (["--device", "cuda:7"], "no CUDA device"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(["bench", *SMALL, "--no-memory", *argv]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("nddr bench: error:") and message in last and "Traceback" not in err
