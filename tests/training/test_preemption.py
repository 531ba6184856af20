"""Stopping a run: SIGTERM / SIGINT save the step and resume exactly, kill -9 loses at most one
checkpoint interval, and a NaN / Inf loss stops with the step, the task and the last checkpoint
(or, with optim.skip_nonfinite, skips that step's update)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from nddr.cli import main
from nddr.errors import NddrError
from nddr.io import load_state_dict
from nddr.tasks import SurfaceNormals
from nddr.training import checkpoint as checkpoints
from nddr.training import train
from nddr.training.config import build_config
from tests.helpers import TINY

# Long enough to signal a run between its first checkpoint and its end (a step takes ~15 ms).
STEPS, EVERY = 200, 20


LONG = [f"optim.steps={STEPS}", f"run.checkpoint_every={EVERY}", "data.batch_size=2"]


LONG += ["run.progress=false"]


TIMEOUT = 120


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(json.dumps(TINY))
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, torch.Tensor]:
    """The final weights of the long run trained straight through (in this process)."""
    out = tmp_path_factory.mktemp("whole")
    return load_state_dict(train(build_config(TINY, [f"run.out={out}", *LONG]))["checkpoint"])


@contextmanager
def _launched(
    config_file: Path, out: Path, *overrides: str, launcher: tuple[str, ...] = ()
) -> Iterator[subprocess.Popen]:
    """``nddr train`` of the long run in a subprocess of its own process group, stderr to
    ``out/stderr.txt``; the group is killed if still running at the end."""
    command = [*launcher] or [sys.executable]
    command += ["-m", "nddr", "train", str(config_file), f"run.out={out}", *LONG, *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(out / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr, env=env, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=TIMEOUT)


def _logged_steps(run_dir: Path) -> list[int]:
    """The steps of the loss records in log.jsonl (a line being written is ignored)."""
    path = run_dir / "log.jsonl"
    steps = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "loss" in record:
            steps.append(record["step"])
    return steps


def _wait_past(process: subprocess.Popen, run_dir: Path, step: int) -> None:
    """Wait until the run has logged a step after ``step`` (so a checkpoint exists)."""
    deadline = time.monotonic() + TIMEOUT
    while max(_logged_steps(run_dir), default=0) <= step:
        if process.poll() is not None:
            error = (run_dir.parent / "stderr.txt").read_text()[-2000:]
            pytest.fail(f"the run ended (status {process.returncode}) too early: {error}")
        assert time.monotonic() < deadline, f"no step past {step} in {TIMEOUT} s"
        time.sleep(0.01)


def _step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix("step_"))


def _assert_same_weights(run_dir: Path, expected: dict[str, torch.Tensor]) -> None:
    """The run's final weights equal ``expected`` bit for bit."""
    final = checkpoints.checkpoint_dir(run_dir, STEPS) / checkpoints.MODEL_FILE
    actual = load_state_dict(final)
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


@pytest.mark.parametrize(
    ("signum", "resume"), [(signal.SIGTERM, True), (signal.SIGINT, False)], ids=["TERM", "INT"]
)
def test_a_signal_saves_the_step_and_the_resumed_run_matches(
    signum, resume, tmp_path, config_file, uninterrupted
):
    run_dir = tmp_path / "tiny-run"
    with _launched(config_file, tmp_path) as process:
        _wait_past(process, run_dir, EVERY)
        process.send_signal(signum)
        assert process.wait(timeout=TIMEOUT) == 128 + signum
    lines = (tmp_path / "stderr.txt").read_text().strip().splitlines()
    pattern = (
        rf"nddr train: stopped by {signum.name} at step (\d+); checkpoint saved at (\S+); "
        r"resume with: nddr train --resume (\S+)"
    )
    match = re.fullmatch(pattern, lines[-1])
    assert match, lines
    step = int(match[1])
    assert EVERY < step < STEPS
    assert Path(match[2]) == checkpoints.checkpoint_dir(run_dir, step)
    assert checkpoints.list_checkpoints(run_dir)[-1] == Path(match[2])
    assert Path(match[3]) == run_dir and _logged_steps(run_dir)[-1] == step
    if not resume:
        return
    assert main(["train", "--resume", match[3]]) == 0
    assert _logged_steps(run_dir) == list(range(1, STEPS + 1))
    _assert_same_weights(run_dir, uninterrupted)


def test_sigterm_to_the_whole_process_group_with_loader_workers_saves_and_resumes(
    tmp_path, config_file, uninterrupted
):
    """``timeout``, SLURM and Ctrl-C signal every process of the group: the loader workers keep
    running, so the step is saved; the resumed run matches the uninterrupted one bit for bit."""
    run_dir = tmp_path / "tiny-run"
    with _launched(config_file, tmp_path, "data.workers=2") as process:
        _wait_past(process, run_dir, EVERY)
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 128 + signal.SIGTERM
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stderr and "killed by signal" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("nddr train: stopped by SIGTERM at step "), last
    newest = checkpoints.list_checkpoints(run_dir)[-1]
    checkpoints.verify_checkpoint(newest)
    assert _step_of(newest) == _logged_steps(run_dir)[-1] > EVERY
    assert not list((run_dir / "checkpoints").glob("*.partial"))
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert _logged_steps(run_dir) == list(range(1, STEPS + 1))
    _assert_same_weights(run_dir, uninterrupted)


def test_sigterm_to_a_torchrun_group_with_loader_workers_saves_a_resumable_step(
    tmp_path, config_file
):
    """Under torchrun (2 ranks, gloo, a loader worker each) the whole group is signalled: the
    ranks agree on a step, rank 0 saves it, and the run resumes from it to the end."""
    run_dir = tmp_path / "tiny-run"
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone")
    launcher += ("--nproc_per_node", "2")
    with _launched(config_file, tmp_path, "data.workers=1", launcher=launcher) as process:
        _wait_past(process, run_dir, EVERY)
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) != 0
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "killed by signal" not in stderr
    stops = [line for line in stderr.splitlines() if "stopped by SIGTERM" in line]
    assert len(stops) == 1 and "resume with: torchrun <the same options>" in stops[0], stderr[
        -3000:
    ]
    step = int(re.search(r"at step (\d+);", stops[0])[1])
    newest = checkpoints.list_checkpoints(run_dir)[-1]
    checkpoints.verify_checkpoint(newest)
    assert _step_of(newest) == step > EVERY
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert _logged_steps(run_dir) == list(range(1, STEPS + 1))


def test_kill_9_loses_at_most_one_checkpoint_interval(tmp_path, config_file, uninterrupted):
    run_dir = tmp_path / "tiny-run"
    with _launched(config_file, tmp_path) as process:
        _wait_past(process, run_dir, EVERY)
        process.kill()
        assert process.wait(timeout=TIMEOUT) == -signal.SIGKILL
    last = _logged_steps(run_dir)[-1]
    newest = _step_of(checkpoints.list_checkpoints(run_dir)[-1])
    assert 0 <= last - newest <= EVERY and last < STEPS
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert _logged_steps(run_dir) == list(range(1, STEPS + 1))
    _assert_same_weights(run_dir, uninterrupted)


def _nan_normals_loss(monkeypatch, bad_steps: set[int] | None) -> None:
    """Make the normals loss NaN at ``bad_steps`` (1-based training calls; None: always)."""
    original = SurfaceNormals.loss
    calls = {"count": 0}

    def loss(self, output, target):
        calls["count"] += 1
        value = original(self, output, target)
        bad = bad_steps is None or calls["count"] in bad_steps
        return value * float("nan") if bad else value

    monkeypatch.setattr(SurfaceNormals, "loss", loss)


@pytest.mark.parametrize("bad_step", [3, 1])
def test_a_nan_loss_names_the_step_the_task_and_the_last_checkpoint(
    bad_step, tmp_path, monkeypatch
):
    _nan_normals_loss(monkeypatch, {bad_step})
    with pytest.raises(NddrError) as error:
        train(build_config(TINY, [f"run.out={tmp_path}", "run.checkpoint_every=2"]))
    message = str(error.value)
    checkpoint = checkpoints.checkpoint_dir(tmp_path / "tiny-run", 2)
    where = f"last good checkpoint: {checkpoint}" if bad_step == 3 else "no checkpoint yet"
    assert message == (
        f"the loss became nan at step {bad_step} in task 'normals' ({where}): lower optim.lr, use "
        "run.amp=bf16 instead of fp16, or set optim.skip_nonfinite=true to skip such batches"
    )


def test_a_huge_learning_rate_stops_the_cli_with_one_line(tmp_path, config_file):
    command = [sys.executable, "-m", "nddr", "train", str(config_file), f"run.out={tmp_path}"]
    command += ["optim.lr=1e30", "optim.steps=4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert completed.returncode == 2, completed.stderr[-2000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nddr train: error: the loss became")
    assert " at step 2 in " in lines[0] and "lower optim.lr" in lines[0]


def test_skip_nonfinite_skips_the_bad_step_and_finishes(tmp_path, monkeypatch, capsys):
    _nan_normals_loss(monkeypatch, {3})
    overrides = ["optim.skip_nonfinite=true", "run.checkpoint_every=1", "run.keep_checkpoints=9"]
    summary = train(build_config(TINY, [f"run.out={tmp_path}", *overrides]))
    assert summary["step"] == 6
    err = capsys.readouterr().err
    assert "warning: the loss became nan at step 3 in task 'normals'; skipping" in err
    run_dir = tmp_path / "tiny-run"
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    skipped = [record["skipped_batches"] for record in records if "loss" in record]
    assert skipped == [0, 0, 1, 1, 1, 1]
    weights = {
        step: load_state_dict(checkpoints.checkpoint_dir(run_dir, step) / checkpoints.MODEL_FILE)
        for step in (2, 3, 4)
    }
    # Step 3 changed nothing (batch-norm statistics included); step 4 trained again.
    assert all(torch.equal(weights[3][key], weights[2][key]) for key in weights[2])
    assert not all(torch.equal(weights[4][key], weights[3][key]) for key in weights[3])
    state = checkpoints.load_trainer_state(checkpoints.checkpoint_dir(run_dir, 3))
    assert state["step"] == 3 and state["scheduler"]["last_epoch"] == 3
    assert state["skipped_batches"] == 1


def test_skip_nonfinite_still_stops_when_many_steps_are_bad(tmp_path, monkeypatch):
    _nan_normals_loss(monkeypatch, None)
    with pytest.raises(NddrError, match="5 of the 5 steps so far were skipped, more than 10%"):
        train(build_config(TINY, [f"run.out={tmp_path}", "optim.skip_nonfinite=true"]))
