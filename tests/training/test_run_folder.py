"""The run folder: a resume writes to the folder it is given, one writer at a time, config changes
on resume refused when they change what is trained and kept when they do not, a clean restart."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nddr.cli import main
from nddr.errors import NddrError
from nddr.training import checkpoint as checkpoints
from nddr.training import train
from nddr.training.config import build_config
from nddr.training.run_folder import (
    CONFIG_HISTORY_FILE,
    LOCK_FILE,
    RunLock,
    check_resume_changes,
    config_changes,
)
from tests.helpers import TINY, tiny_config

TIMEOUT = 120


def _trained(tmp_path: Path, name: str = "r1", *overrides: str) -> Path:
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    config = tiny_config(
        tmp_path, f"name={name}", "optim.steps=4", "run.checkpoint_every=2", *overrides
    )
    train(config)
    return config.run_dir


def _steps(run_dir: Path) -> list[int]:
    return [int(path.name.removeprefix("step_")) for path in checkpoints.list_checkpoints(run_dir)]


def test_resume_writes_to_the_folder_given_not_to_the_one_its_config_names(tmp_path):
    original = _trained(tmp_path)
    copy = tmp_path / "elsewhere" / "r1copy"
    shutil.copytree(original, copy)
    before = sorted(path.name for path in (original / "checkpoints").iterdir())
    assert main(["train", "--resume", str(copy), "optim.steps=6", "run.keep_checkpoints=1"]) == 0
    assert _steps(copy) == [6]
    assert sorted(path.name for path in (original / "checkpoints").iterdir()) == before
    assert json.loads((copy / "results.json").read_text())["step"] == 6


def test_resume_by_a_relative_path_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = build_config(TINY, ["run.out=runs", "name=rel", "optim.steps=4"])
    train(config)
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    assert main(["train", "--resume", "../runs/rel", "optim.steps=6"]) == 0
    assert _steps(tmp_path / "runs" / "rel")[-1] == 6
    assert not (tmp_path / "other" / "runs").exists()


def test_a_second_writer_is_refused_naming_the_first_ones_pid(tmp_path):
    first = RunLock(tmp_path / "run")
    first.acquire()
    with pytest.raises(NddrError, match=rf"in use by another training \(pid {os.getpid()}\)"):
        RunLock(tmp_path / "run").acquire()
    first.release()
    second = RunLock(tmp_path / "run")
    second.acquire()
    second.release()


def test_two_trainings_into_one_folder_the_second_fails_naming_the_pid(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    command = [sys.executable, "-m", "nddr", "train", str(config), f"run.out={tmp_path}"]
    slow = [*command, "optim.steps=100000", "run.checkpoint_every=0", "data.batch_size=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(slow, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        log = tmp_path / "tiny-run" / "log.jsonl"
        deadline = time.monotonic() + TIMEOUT
        while not (log.is_file() and log.read_text().strip()):
            assert first.poll() is None, first.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by another training (pid {first.pid})" in lines[0]
        assert "Traceback" not in second.stderr and first.poll() is None
        # The second never wrote: the log holds the first run's steps only, once each.
        records = [json.loads(line) for line in log.read_text().splitlines()]
        steps = [record["step"] for record in records if "loss" in record]
        assert steps == list(range(1, len(steps) + 1))
    finally:
        first.kill()
        first.wait(timeout=TIMEOUT)
    # A killed holder leaves no stale lock: the folder can be used again at once.
    RunLock(tmp_path / "tiny-run").acquire()


def test_resume_refuses_changes_to_what_is_trained_naming_the_keys(tmp_path, capsys):
    run_dir = _trained(tmp_path)
    saved = (run_dir / "config.yaml").read_text()
    status = main(["train", "--resume", str(run_dir), "optim.lr=0.5", "data.batch_size=4"])
    message = capsys.readouterr().err.strip()
    assert status == 2 and len(message.splitlines()) == 1
    assert "optim.lr (0.01 -> 0.5)" in message and "data.batch_size (8 -> 4)" in message
    assert (run_dir / "config.yaml").read_text() == saved
    assert _steps(run_dir) == [2, 4]


def test_resume_keeps_every_config_the_run_has_seen(tmp_path):
    run_dir = _trained(tmp_path)
    assert main(["train", "--resume", str(run_dir), "optim.steps=6", "run.log_every=2"]) == 0
    history = [
        json.loads(line) for line in (run_dir / CONFIG_HISTORY_FILE).read_text().splitlines()
    ]
    assert [entry["step"] for entry in history] == [0, 4]
    assert history[0]["changed"] == {} and history[0]["config"]["optim"]["steps"] == 4
    assert history[1]["changed"] == {"optim.steps": [4, 6], "run.log_every": [1, 2]}
    assert history[1]["config"]["optim"]["steps"] == 6
    assert "steps: 6" in (run_dir / "config.yaml").read_text()


def test_resume_allows_only_keys_that_do_not_change_what_is_trained():
    before = build_config(TINY)
    allowed = config_changes(before, build_config(TINY, ["run.eval_every=2", "data.workers=1"]))
    check_resume_changes(allowed, 3)
    for override in ("run.seed=1", "model.fusion_options={init: [1, 0]}", "run.amp=bf16", "name=x"):
        changes = config_changes(before, build_config(TINY, [override]))
        with pytest.raises(NddrError, match="would change what the run trains"):
            check_resume_changes(changes, 3)
    shorter = config_changes(before, build_config(TINY, ["optim.steps=2"]))
    with pytest.raises(
        NddrError, match=r"optim.steps=2 is below the step the run resumes from \(3\)"
    ):
        check_resume_changes(shorter, 3)


def test_a_restart_without_checkpoint_starts_clean(tmp_path, capsys):
    run_dir = tmp_path / "tiny-run"
    (run_dir / "tensorboard").mkdir(parents=True)
    (run_dir / "tensorboard" / "events.out.tfevents.1.old.0").write_bytes(b"old")
    (run_dir / "log.jsonl").write_text('{"step": 99, "loss": {"total": 1.0}}\n')
    partial = run_dir / "checkpoints" / "step_00000050.partial"
    partial.mkdir(parents=True)
    (run_dir / "notes.txt").write_text("the user's own file")
    train(tiny_config(tmp_path))
    err = capsys.readouterr().err
    assert "removed" in err and "start afresh" in err
    assert not partial.exists()
    assert [p.name for p in (run_dir / "tensorboard").iterdir()] != ["events.out.tfevents.1.old.0"]
    assert len(list((run_dir / "tensorboard").iterdir())) == 1
    steps = [json.loads(line)["step"] for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert 99 not in steps
    assert (run_dir / "notes.txt").read_text() == "the user's own file"
    assert (run_dir / LOCK_FILE).read_text() == ""


def test_a_stale_partial_checkpoint_is_removed_on_resume_with_a_note(tmp_path, capsys):
    run_dir = _trained(tmp_path)
    partial = run_dir / "checkpoints" / "step_00000005.partial"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "optim.steps=6"]) == 0
    assert f"removed {str(partial)!r}" in capsys.readouterr().err
    assert not partial.exists() and _steps(run_dir)[-1] == 6


def test_a_run_that_fails_to_start_releases_its_folder(tmp_path):
    with pytest.raises(NddrError, match="loss_weights names 'bogus'"):
        train(tiny_config(tmp_path, "optim.loss_weights={bogus: 1.0}"))
    train(tiny_config(tmp_path, "optim.steps=2"))
    assert _steps(tmp_path / "tiny-run") == [2]


def test_every_name_of_a_run_folder_is_the_run_folder_modules(tmp_path):
    """A finished run's folder holds exactly the names nddr.training.run_folder defines, and the
    checkpoint folders are its ``checkpoint_dir``."""
    from nddr.training import run_folder

    summary = train(tiny_config(tmp_path, "optim.steps=3"))
    run_dir = Path(summary["run_dir"])
    names = {path.name for path in run_dir.iterdir()}
    assert names == {
        run_folder.CONFIG_FILE,
        run_folder.CONFIG_HISTORY_FILE,
        run_folder.LOG_FILE,
        run_folder.TENSORBOARD_DIR,
        run_folder.RESULTS_FILE,
        run_folder.CHECKPOINTS_DIR,
        run_folder.LOCK_FILE,
    }
    checkpoint = run_folder.checkpoint_dir(run_dir, 3)
    assert checkpoints.list_checkpoints(run_dir) == [checkpoint]
    assert {path.name for path in checkpoint.iterdir()} == {
        run_folder.MODEL_FILE,
        run_folder.TRAINER_FILE,
        run_folder.MANIFEST_FILE,
    }
    assert Path(summary["checkpoint"]) == checkpoint / run_folder.MODEL_FILE
