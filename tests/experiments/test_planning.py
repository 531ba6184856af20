"""`nddr reproduce`: suites plan in dependency order, tables show ours beside the paper, reruns resume."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nddr.cli import main
from nddr.cli import reproduce as cli
from nddr.errors import NddrError
from nddr.reproduce import (
    RECORD_NAME,
    RESULTS_NAME,
    SUITES,
    find_configs,
    format_plan,
    plan,
    plan_document,
    run_suite,
)
from nddr.training.config import Config
from tests.experiments.test_tables import FUSED, FakeTrainer, table_cells


def test_table4_plan_trains_single_task_runs_first_and_starts_the_fused_ones_from_them(tmp_path):
    specs = plan("table4", 2, out=tmp_path)
    assert [s.row for s in specs[:6]] == [
        "single_task",
        "single_task",
        "multi_task",
        *FUSED,
    ]
    assert [s.seed for s in specs] == [0] * 6 + [1] * 6
    for index, spec in enumerate(specs):
        singles = {
            s.config.stem.removeprefix("single_"): s
            for s in specs[:index]
            if s.row == "single_task" and s.seed == spec.seed
        }
        if spec.row in FUSED:
            assert set(singles) == {"segmentation", "normals"}
            expected = {task: str(single.checkpoint) for task, single in singles.items()}
            assert spec.settings.model.init_from == expected
            assert dict(spec.init_from) == {t: s.run_dir for t, s in singles.items()}
        else:
            assert spec.settings.model.init_from is None
        assert spec.settings.run.seed == spec.seed
        assert spec.run_dir == tmp_path / "nyuv2" / "table4" / f"{spec.config.stem}-seed{spec.seed}"
        final = spec.run_dir / "checkpoints" / "step_00020000" / "model.safetensors"
        assert spec.checkpoint == final
    assert len({s.run_dir for s in specs}) == len(specs)


def dry_run_json(capsys, *args: str) -> dict:
    """``nddr reproduce ARGS --dry-run --json`` through the command's entry point, parsed."""
    assert main(["reproduce", *args, "--dry-run", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_dry_run_json_gives_every_runs_resolved_config_and_links(tmp_path, capsys):
    document = dry_run_json(capsys, "table4", "--out", str(tmp_path), "--seeds", "2")
    assert (document["suite"], document["seeds"]) == ("table4", [0, 1])
    runs = document["runs"]
    assert [run["index"] for run in runs] == list(range(1, 13))
    by_name = {(Path(run["config_file"]).stem, run["seed"]): run for run in runs}
    normals, segmentation = by_name["single_normals", 0], by_name["single_segmentation", 0]
    nddr = by_name["nddr", 0]
    # The released code: single-task normals x10 and decay 5e-4, two-task normals x20 and 2.5e-4.
    assert normals["config"]["optim"]["loss_weights"] == {"normals": 10.0}
    assert normals["config"]["optim"]["weight_decay"] == 5e-4
    assert segmentation["config"]["optim"]["loss_weights"] == {}
    assert nddr["config"]["optim"]["loss_weights"] == {"normals": 20.0}
    assert nddr["config"]["optim"]["weight_decay"] == 2.5e-4
    assert nddr["config"]["model"]["fusion_options"] == {"init": [0.9, 0.1]}
    assert nddr["row"] == "nddr" and nddr["run_dir"] == str(tmp_path / "nyuv2/table4/nddr-seed0")
    assert nddr["init_from"] == {
        "segmentation": {
            "run": segmentation["index"],
            "run_dir": segmentation["run_dir"],
            "checkpoint": segmentation["checkpoint"],
        },
        "normals": {
            "run": normals["index"],
            "run_dir": normals["run_dir"],
            "checkpoint": normals["checkpoint"],
        },
    }
    assert nddr["config"]["model"]["init_from"] == {
        "segmentation": segmentation["checkpoint"],
        "normals": normals["checkpoint"],
    }
    assert (
        by_name["nddr", 1]["init_from"]["normals"]["run"] == by_name["single_normals", 1]["index"]
    )
    assert by_name["multi", 0]["init_from"] == {}
    assert {(run["state"], run["reused"]) for run in runs} == {("train", False)}
    for run in runs:
        assert Config.model_validate(run["config"]).run_dir == Path(run["run_dir"])
    assert not list(tmp_path.iterdir()), "a dry run writes nothing"

    xavier = dry_run_json(capsys, "table1", "--out", str(tmp_path), "--only", "init(xavier)")
    config = xavier["runs"][-1]["config"]
    assert config["model"]["fusion_options"] == {"init": "xavier"}
    assert config["optim"]["fusion_lr_mult"] == 1000


def test_dry_run_says_which_runs_are_reused_or_resumed(tmp_path, capsys):
    run_suite("cpu-digits", 1, (), tmp_path, train=FakeTrainer(), log=lambda _: None)
    specs = plan("cpu-digits", 1, out=tmp_path)
    nddr = next(spec for spec in specs if spec.row == "nddr")
    (nddr.run_dir / RESULTS_NAME).unlink()
    stopped = nddr.run_dir / "checkpoints" / "step_00000100"
    stopped.mkdir(parents=True)
    (stopped / "model.safetensors").write_bytes(b"fake")
    states = {
        run["row"]: (run["state"], run["reused"])
        for run in plan_document("cpu-digits", specs)["runs"]
    }
    assert states.pop("nddr") == ("resume", False)
    assert set(states.values()) == {("reuse", True)}
    text = format_plan(specs)
    assert text.count("(finished: reused)") == len(specs) - 1
    assert text.count("(stopped: resumed)") == 1


@pytest.mark.parametrize("suite", SUITES)
def test_every_suite_dry_runs_as_json(suite, tmp_path, capsys):
    """CI check of `nddr reproduce SUITE --dry-run --json` for table1 .. table7, tableS1 and the
    CPU suites: valid JSON whose configs are the plan's, every link pointing at an earlier run."""
    document = dry_run_json(capsys, suite, "--out", str(tmp_path))
    specs = plan(suite, 1, out=tmp_path)
    assert len(document["runs"]) == len(specs)
    for run, spec in zip(document["runs"], specs):
        assert Config.model_validate(run["config"]) == spec.settings
        for link in run["init_from"].values():
            source = document["runs"][link["run"] - 1]
            assert source["row"] == "single_task" and link["run"] < run["index"]
            assert link["checkpoint"] == source["checkpoint"]


def test_the_installed_command_dry_runs_a_suite_as_json(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "nddr", "reproduce", "tableS1", "--dry-run", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [run["config"]["model"]["backbone"] for run in runs] == ["alexnet"] * 6


def test_json_without_dry_run_is_a_one_line_error(capsys):
    assert main(["reproduce", "table4", "--json"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "add --dry-run" in error


def test_dry_run_lists_every_run_with_its_overrides(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(), "reproduce")
    args = parser.parse_args(
        ["reproduce", "table4", "--dry-run", "--out", str(tmp_path), "--set", "optim.steps=7"]
    )
    assert cli.run(args) == 0
    printed = capsys.readouterr().out
    assert "table4: 6 runs" in printed
    assert printed.index("single_segmentation") < printed.index("nddr.yaml")
    assert printed.count("optim.steps=7") == 6
    assert printed.count("model.init_from.normals=") == 3
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("suite", SUITES)
def test_every_suite_plans(suite, tmp_path):
    specs = plan(suite, 2, ["optim.steps=3"], tmp_path)
    assert {s.row for s in specs} == {row.label for row in SUITES[suite].rows}
    assert len({s.run_dir for s in specs}) == len(specs)
    assert all(s.settings.optim.steps == 3 for s in specs)
    assert format_plan(specs).count("run dir:") == len(specs)


def test_only_keeps_the_row_and_the_single_task_runs(tmp_path):
    specs = plan("table1", 1, out=tmp_path, only=["init(xavier)"])
    assert [s.row for s in specs] == ["single_task", "single_task", "init(xavier)"]
    with pytest.raises(NddrError, match=r"did you mean 'init\(xavier\)'"):
        plan("table1", 1, out=tmp_path, only=["init(xavir)"])


def test_fused_runs_start_from_the_checkpoints_the_trainer_reported(tmp_path):
    fake = FakeTrainer()
    run_suite("table4", 1, (), tmp_path, train=fake, log=lambda _: None, only=["nddr"])
    assert [c.model.variant for c in fake.configs] == ["single", "single", "nddr"]
    reported = {
        c.data.tasks[0]: str(c.run_dir / "weights" / "final.safetensors") for c in fake.configs[:2]
    }
    assert fake.configs[2].model.init_from == reported


def test_rerun_skips_finished_runs_and_refuses_other_settings(tmp_path):
    first = FakeTrainer()
    markdown = run_suite("cpu-digits", 1, [], tmp_path, train=first, log=lambda _: None)
    assert len(first.configs) == len(plan("cpu-digits", 1, out=tmp_path))
    for config in first.configs:
        assert (config.run_dir / RESULTS_NAME).is_file()
        assert json.loads((config.run_dir / RECORD_NAME).read_text())["seed"] == 0
    nddr_dir = next(c.run_dir for c in first.configs if c.name == "nddr-seed0")
    (nddr_dir / RESULTS_NAME).unlink()
    second = FakeTrainer()
    logs: list[str] = []
    second_markdown = run_suite("cpu-digits", 1, [], tmp_path, train=second, log=logs.append)
    assert [c.name for c in second.configs] == ["nddr-seed0"]
    assert second_markdown == markdown
    assert sum("finished before" in line for line in logs) == len(first.configs) - 1
    with pytest.raises(NddrError, match=r"optim.steps=.*another --out"):
        run_suite("cpu-digits", 1, ["optim.steps=5"], tmp_path, train=FakeTrainer())


def test_a_stopped_run_is_resumed(tmp_path):
    spec = plan("cpu-digits", 1, out=tmp_path)[0]
    stopped = spec.run_dir / "checkpoints" / "step_00000100"
    stopped.mkdir(parents=True)
    (stopped / "model.safetensors").write_bytes(b"fake")
    calls = []

    def train(config: Config, resume: bool = False) -> dict:
        calls.append((config.name, resume))
        return FakeTrainer()(config)

    run_suite("cpu-digits", 1, (), tmp_path, train=train, log=lambda _: None, only=["multi_task"])
    assert calls == [
        ("single_left-seed0", True),
        ("single_right-seed0", False),
        ("multi-seed0", False),
    ]


def test_results_written_by_the_trainer_alone_are_reused(tmp_path):
    spec = plan("cpu-digits", 1, out=tmp_path)[0]
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / RESULTS_NAME).write_text(json.dumps({"left": {"accuracy": 80.0}}))
    fake = FakeTrainer()
    markdown = run_suite("cpu-digits", 1, (), tmp_path, train=fake, log=lambda _: None)
    assert "single_left" not in {c.name.rsplit("-", 1)[0] for c in fake.configs}
    assert fake.configs[2].model.init_from["left"] == str(spec.checkpoint)
    cells = table_cells(markdown)
    assert list(cells["nddr"]) == ["row", "left acc ↑", "right acc ↑", "Δm (metrics)", "Δm (tasks)"]
    assert cells["single_task"]["left acc ↑"] == "80.0"
    assert cells["nddr"]["Δm (metrics)"] == cells["nddr"]["Δm (tasks)"] == "+10.00"


def test_bad_names_and_overrides_are_one_line_errors(tmp_path):
    with pytest.raises(NddrError, match="unknown suite 'tabel4': did you mean 'table4'"):
        plan("tabel4")
    with pytest.raises(NddrError, match="did you mean 'cpu-digits'"):
        run_suite("cpu-digit", train=FakeTrainer())
    with pytest.raises(NddrError, match=r"reproduce sets run\.seed itself"):
        plan("table4", 1, ["run.seed=3"], tmp_path)
    with pytest.raises(NddrError, match="--seeds must be at least 1"):
        plan("table4", 0, (), tmp_path)
    with pytest.raises(NddrError, match="no configs folder"):
        find_configs(tmp_path / "nowhere")
    with pytest.raises(NddrError, match=r"unknown key 'optim\.step'"):
        plan("table4", 1, ["optim.step=3"], tmp_path)
