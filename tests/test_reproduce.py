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
    Outcome,
    find_configs,
    format_plan,
    format_table,
    higher_is_better,
    paper_rows,
    plan,
    plan_document,
    run_suite,
)
from nddr.tasks.metrics.normals import ENCODED_PREFIX
from nddr.training.config import Config

FUSED = ("cross_stitch", "sluice", "nddr")

# Worked example: the fused rows are exactly 10% better than the single-task row on every metric,
# except mIoU, which is 40 / 42 (single) and 44 / 46 (fused) at seeds 0 / 1, and the true normal
# angles, 20% better (the paper's normal figures are encoded angles: true ones are not in Delta_m).
SINGLE = {
    "segmentation": {"miou": 40.0, "pixel_accuracy": 60.0},
    "normals": {
        "mean": 20.0,
        "median": 16.0,
        "within_11.25": 30.0,
        "within_22.5": 50.0,
        "within_30": 60.0,
        "encoded_mean": 10.0,
        "encoded_median": 8.0,
        "encoded_within_11.25": 40.0,
        "encoded_within_22.5": 70.0,
        "encoded_within_30": 80.0,
    },
    "left": {"accuracy": 80.0},
    "right": {"accuracy": 50.0},
}
BETTER = {
    "segmentation": {"miou": 44.0, "pixel_accuracy": 66.0},
    "normals": {
        "mean": 16.0,
        "median": 12.8,
        "within_11.25": 36.0,
        "within_22.5": 60.0,
        "within_30": 72.0,
        "encoded_mean": 9.0,
        "encoded_median": 7.2,
        "encoded_within_11.25": 44.0,
        "encoded_within_22.5": 77.0,
        "encoded_within_30": 88.0,
    },
    "left": {"accuracy": 88.0},
    "right": {"accuracy": 55.0},
}


class FakeTrainer:
    """Deterministic results per variant and seed; writes a checkpoint where no plan expects it."""

    def __init__(self) -> None:
        self.configs: list[Config] = []

    def __call__(self, config: Config) -> dict:
        self.configs.append(config)
        table = BETTER if config.model.variant in FUSED else SINGLE
        results = {task: dict(table[task]) for task in config.data.tasks}
        if "segmentation" in results:
            results["segmentation"]["miou"] += 2.0 * config.run.seed
        checkpoint = config.run_dir / "weights" / "final.safetensors"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(b"fake")
        return {"run_dir": str(config.run_dir), "results": results, "checkpoint": str(checkpoint)}


def table_cells(markdown: str) -> dict[str, dict[str, str]]:
    """Row label -> column header -> cell of the markdown table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


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
    assert text.count("(finished: reused)") == 6 and text.count("(stopped: resumed)") == 1


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


def test_table_has_the_paper_beside_ours_with_std_over_seeds_and_delta_m(tmp_path):
    fake = FakeTrainer()
    markdown = run_suite("table4", 2, ["optim.steps=3"], tmp_path, train=fake, log=lambda _: None)
    assert (tmp_path / "table4.md").read_text() == markdown + "\n"
    assert len(fake.configs) == 12
    rows = table_cells(markdown)
    assert list(rows) == ["single_task", "multi_task", "cross_stitch", "sluice", "nddr"]
    paper = paper_rows(4)
    nddr, single = rows["nddr"], rows["single_task"]
    assert nddr["mIoU ↑ paper"] == "36.2" == f"{paper['nddr']['seg_miou']:.1f}"
    assert nddr["N mean (enc) ↓ paper"] == "13.9"
    assert single["N 11.25 (enc) ↑ paper"] == "46.4"
    # mIoU (%) 44, 46 over seeds 0, 1: mean 45, sample std sqrt(2) = 1.41.
    assert nddr["mIoU ↑ ours"] == "45.0 ± 1.41"
    assert single["mIoU ↑ ours"] == "41.0 ± 1.41"
    # The paper's normal figures stand beside our encoded angles; the true ones have no paper cell.
    assert nddr["N mean (enc) ↓ ours"] == "9.0 ± 0.00"
    assert nddr["N mean (true) ↓ ours"] == "16.0 ± 0.00"
    assert "N mean (true) ↓ paper" not in nddr
    assert nddr["PAcc ↑ ours"] == "66.0 ± 0.00"
    # Delta_m over the 7 columns with a paper number: six metrics 10% better, mIoU
    # (45 - 41) / 41 = 9.76% better; per task: normals 10%, segmentation (9.76 + 10) / 2.
    miou = 100 * 4 / 41
    assert nddr["Δm (metrics) ours"] == f"{(6 * 10 + miou) / 7:+.2f}" == "+9.97"
    assert nddr["Δm (tasks) ours"] == f"{(10 + (miou + 10) / 2) / 2:+.2f}" == "+9.94"
    for convention in ("metrics", "tasks"):
        assert rows["multi_task"][f"Δm ({convention}) ours"] == "+0.00"
        assert single[f"Δm ({convention}) ours"] == "+0.00"
    # The paper's Table 4: single-task 15.6 12.3 46.4 75.5 86.5 33.5 64.1, NDDR 13.9 10.2 53.5 79.5
    # 88.8 36.2 66.4 (angle errors lower is better, the rest higher).
    lower = [(15.6, 13.9), (12.3, 10.2)]
    higher = [(46.4, 53.5), (75.5, 79.5), (86.5, 88.8), (33.5, 36.2), (64.1, 66.4)]
    changes = [(s - m) / s for s, m in lower] + [(m - s) / s for s, m in higher]
    assert nddr["Δm (metrics) paper"] == f"{100 * sum(changes) / 7:+.2f}" == "+8.98"
    per_task = (sum(changes[:5]) / 5 + sum(changes[5:]) / 2) / 2
    assert nddr["Δm (tasks) paper"] == f"{100 * per_task:+.2f}" == "+8.03"
    assert "N 11.25 (enc), N 22.5 (enc), N 30 (enc), mIoU, PAcc" in markdown
    assert "the paper's N figures stand beside our (enc) angles" in markdown


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
    assert len(first.configs) == 7
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
    assert sum("finished before" in line for line in logs) == 6
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


def test_runs_not_finished_are_dashes_and_named(tmp_path):
    specs = plan("table7", 1, out=tmp_path)
    singles = [spec for spec in specs if spec.row == "single_task"]
    outcomes = {
        spec.run_dir: Outcome({"age": {"mean_ae": 9.5, "median_ae": 7.0}}, spec.checkpoint)
        if "age" in spec.config.stem
        else Outcome({"gender": {"accuracy": 80.0}}, spec.checkpoint)
        for spec in singles
    }
    markdown = format_table(SUITES["table7"], specs, outcomes, [0])
    rows = table_cells(markdown)
    assert rows["single_task"]["age MAE ↓ ours"] == "9.5"
    assert rows["single_task"]["gender acc ↑ paper"] == "83.5"
    assert rows["multi_task"]["age MAE ↓ paper"] == "9.0"
    assert rows["multi_task"]["age MAE ↓ ours"] == "-"
    assert rows["multi_task"]["Δm (metrics) ours"] == "-"
    assert rows["nddr"]["Δm (metrics) paper"] != "-"
    assert "Not run yet: multi_task seed 0, cross_stitch seed 0" in markdown


def test_table_s1_has_empty_paper_columns_and_says_why(tmp_path):
    fake = FakeTrainer()
    markdown = run_suite("tableS1", 1, (), tmp_path, train=fake, log=lambda _: None)
    assert {c.model.backbone for c in fake.configs} == {"alexnet"}
    rows = table_cells(markdown)
    assert list(rows) == ["single_task", "multi_task", "cross_stitch", "sluice", "nddr"]
    for cells in rows.values():
        paper = [value for header, value in cells.items() if header.endswith(" paper")]
        assert len(paper) == 9 and set(paper) == {"-"}
    assert rows["nddr"]["mIoU ↑ ours"] == "44.0"
    assert rows["nddr"]["Δm (metrics) ours"] == "+10.00"
    assert "supplementary material, which is not available to us" in markdown
    assert "Paper: the published numbers" not in markdown


@pytest.mark.parametrize("suite", SUITES.values(), ids=lambda suite: suite.name)
def test_delta_m_counts_the_same_metrics_for_the_paper_and_for_us(suite):
    """Ours and the paper's Delta_m are over the columns with a paper number; on NYUv2 the normal
    ones are the encoded angles (the paper's), and every column's metric has a direction."""
    directions = higher_is_better(suite)
    assert {c.metric for c in suite.columns} == {m for d in directions.values() for m in d}
    counted = [column for column in suite.columns if column.gain]
    if suite.table is not None or suite.paper_absent is not None:
        assert counted == [column for column in suite.columns if column.paper]
    if suite.table is not None:
        published = set().union(*paper_rows(suite.table).values())
        assert {column.paper for column in counted} <= published
    normals = [column.metric for column in counted if column.task == "normals"]
    if suite.name.startswith("table"):
        assert all(metric.startswith(ENCODED_PREFIX) for metric in normals)
        assert len(normals) in (0, 5)
    else:
        assert not any(metric.startswith(ENCODED_PREFIX) for metric in normals)


def test_paper_rows_come_from_the_csv():
    assert paper_rows(4)["single_task"]["normal_11.25"] == 46.4
    assert paper_rows("table1")["init(xavier)"]["seg_miou"] == 33.4
    assert paper_rows("7")["nddr"] == {"age_mae": 8.0, "age_medae": 6.2, "gender_acc": 84.0}
    with pytest.raises(NddrError, match="no table"):
        paper_rows(9)


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


def test_configs_folder_is_the_packages_and_the_repositorys_link_points_at_it():
    import nddr

    packaged = Path(nddr.__file__).resolve().parent / "configs"
    assert find_configs() == packaged
    assert (Path(__file__).resolve().parents[1] / "configs").resolve() == packaged


def test_suites_file_errors_name_the_suite_and_the_fix():
    from nddr.experiments.suites import load_suites

    base = "columns: {c: [{name: a, task: left, metric: accuracy}]}\nsuites:\n  s:\n"
    suite = "    title: t\n    tasks: {left: classification}\n    columns: c\n"
    single = "    rows:\n      single_task: {configs: {left: a.yaml}}\n"
    loaded = load_suites(
        base + suite + single + "      nddr: {configs: [b.yaml], init_from_single: true}\n"
    )
    assert loaded["s"].single == {"left": "a.yaml"}
    assert [(r.label, r.configs, r.init_from_single) for r in loaded["s"].rows] == [
        ("single_task", ("a.yaml",), False),
        ("nddr", ("b.yaml",), True),
    ]
    with pytest.raises(NddrError, match="needs a single_task row"):
        load_suites(base + suite + "    rows:\n      nddr: {configs: [b.yaml]}\n")
    with pytest.raises(NddrError, match="unknown column set"):
        load_suites(base + suite.replace("columns: c", "columns: d") + single)
    with pytest.raises(NddrError, match=r"not a valid suites file .*init_from_singel"):
        load_suites(
            base + suite + single + "      x: {configs: [b.yaml], init_from_singel: true}\n"
        )
