"""A rank that dies or hangs under ``torchrun`` ends the whole run quickly and loudly.

gloo on CPU, the TINY config, training far longer than the test waits: the fault is injected
mid-training (after two logged steps), and every wait is bounded."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nddr.errors import NddrError
from nddr.training.distributed import collective_timeout
from tests.helpers import TINY

STARTUP_LIMIT_S = 120


EXIT_LIMIT_S = 60


HANG_TIMEOUT_S = 15


def test_the_collective_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("NDDR_DIST_TIMEOUT", raising=False)
    assert collective_timeout().total_seconds() == 600
    monkeypatch.setenv("NDDR_DIST_TIMEOUT", " 2.5 ")
    assert collective_timeout().total_seconds() == 2.5
    for bad in ("soon", "0", "-3", "inf", "nan"):
        monkeypatch.setenv("NDDR_DIST_TIMEOUT", bad)
        with pytest.raises(NddrError, match=f"NDDR_DIST_TIMEOUT='{bad}' is not a number"):
            collective_timeout()


def _children(pid: int) -> list[int]:
    """The child processes of ``pid`` (from /proc, no psutil)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _environment(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, _, value in pairs}


def _worker(launcher: int, local_rank: int) -> int | None:
    """The pid of the worker of ``local_rank`` among the launcher's descendants, if started."""
    pending = _children(launcher)
    while pending:
        pid = pending.pop()
        if _environment(pid).get("LOCAL_RANK") == str(local_rank):
            return pid
        pending += _children(pid)
    return None


def _logged_steps(log: Path) -> int:
    if not log.is_file():
        return 0
    return sum('"loss"' in line for line in log.read_text().splitlines())


def _wait_for(condition, limit_s: float, process: subprocess.Popen) -> None:
    """Poll ``condition`` until true; fail if ``process`` ends first or ``limit_s`` passes."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert process.poll() is None, f"torchrun ended early with {process.returncode}"
        assert time.monotonic() < deadline, f"not reached within {limit_s} s"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (neither gone nor a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _start(tmp_path: Path, output, **env: str) -> subprocess.Popen:
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    overrides = [
        f"run.out={tmp_path}",
        "name=faults",
        "optim.steps=100000",
        "run.checkpoint_every=0",
        "run.log_every=1",
        "run.progress=false",
        "data.workers=0",
    ]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "nddr", "train", str(config), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _training(tmp_path: Path, output_path: Path, **env: str) -> subprocess.Popen:
    """torchrun with 2 ranks, once rank 0 has logged two steps."""
    with open(output_path, "wb") as output:
        process = _start(tmp_path, output, **env)
    log = tmp_path / "faults" / "log.jsonl"
    try:
        _wait_for(lambda: _logged_steps(log) >= 2, STARTUP_LIMIT_S, process)
    except BaseException:
        _stop(process)
        raise
    return process


def _stop(process: subprocess.Popen) -> None:
    """Kill what is left of the run (its own session: torchrun and its workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_a_killed_rank_ends_the_run_with_an_error(tmp_path):
    """SIGKILL rank 1 mid-training: torchrun exits non-zero within a minute and says why."""
    output_path = tmp_path / "torchrun.out"
    process = _training(tmp_path, output_path)
    try:
        worker = _worker(process.pid, 1)
        assert worker is not None, "no worker with LOCAL_RANK=1 under torchrun"
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        returncode = process.wait(timeout=EXIT_LIMIT_S)
        elapsed = time.monotonic() - killed
    finally:
        _stop(process)
    text = output_path.read_text(errors="replace")
    assert returncode != 0, text[-3000:]
    assert elapsed < EXIT_LIMIT_S
    assert "ChildFailedError" in text and "local_rank: 1" in text, text[-3000:]
    assert "Signal 9 (SIGKILL)" in text, text[-3000:]


def test_a_hung_rank_times_out_the_others(tmp_path):
    """SIGSTOP rank 1 (alive, silent): rank 0 fails in its collective after NDDR_DIST_TIMEOUT
    seconds with a timeout error, not gloo's default of 30 minutes, and the run ends."""
    output_path = tmp_path / "torchrun.out"
    process = _training(tmp_path, output_path, NDDR_DIST_TIMEOUT=str(HANG_TIMEOUT_S))
    try:
        main, hung = _worker(process.pid, 0), _worker(process.pid, 1)
        assert main is not None and hung is not None, "workers not found under torchrun"
        os.kill(hung, signal.SIGSTOP)
        stopped = time.monotonic()
        deadline = stopped + HANG_TIMEOUT_S + EXIT_LIMIT_S / 2
        while _alive(main) and time.monotonic() < deadline:
            time.sleep(0.2)
        waited = time.monotonic() - stopped
        # torchrun would SIGKILL the stopped rank after its grace period (30 s): spare the wait.
        os.kill(hung, signal.SIGKILL)
        returncode = process.wait(timeout=EXIT_LIMIT_S)
    finally:
        _stop(process)
    text = output_path.read_text(errors="replace")
    assert waited < HANG_TIMEOUT_S + EXIT_LIMIT_S / 2, text[-3000:]
    assert returncode != 0, text[-3000:]
    # gloo words it "Timed out ..." or, when the peer's socket closes first, "Application
    # timeout caused pair closure", depending on which side notices first.
    timed_out = "timed out" in text.lower() or "application timeout" in text.lower()
    assert timed_out and "ChildFailedError" in text, text[-3000:]
