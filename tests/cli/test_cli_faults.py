"""Faults met through the real command line, in subprocesses: a damaged newest checkpoint on
``--resume`` and files whose unpickling would run code."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from nddr.training import checkpoint as checkpoints
from tests.helpers import TINY
from tests.training.test_checkpoint import write_malicious


def _nddr(*argv: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nddr", *argv], capture_output=True, text=True, timeout=timeout
    )


def _trained_run(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    done = _nddr("train", str(config), f"run.out={tmp_path}")
    assert done.returncode == 0, done.stderr
    return config, tmp_path / TINY["name"]


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_resume_skips_a_corrupt_or_truncated_newest_checkpoint(tmp_path):
    _, run = _trained_run(tmp_path)  # 6 steps, checkpoints at 3 and 6
    newest = checkpoints.checkpoint_dir(run, 6)
    _flip_a_byte(newest / checkpoints.MODEL_FILE)
    done = _nddr("train", "--resume", str(run), "optim.steps=9")
    assert done.returncode == 0, done.stderr
    assert "step_00000006" in done.stderr and "checksum mismatch" in done.stderr
    assert "falling back to" in done.stderr and "step_00000003" in done.stderr
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 9
    checkpoints.verify_checkpoint(newest)  # steps 4-6 were trained again and step 6 rewritten
    newest = checkpoints.checkpoint_dir(run, 9)
    truncated = newest / checkpoints.TRAINER_FILE
    truncated.write_bytes(truncated.read_bytes()[:100])
    done = _nddr("train", "--resume", str(run), "optim.steps=12")
    assert done.returncode == 0, done.stderr
    assert "step_00000009" in done.stderr and "truncated" in done.stderr


def test_pickled_code_in_a_checkpoint_or_weights_file_is_refused_and_never_run(tmp_path):
    config, run = _trained_run(tmp_path)
    target = tmp_path / "pwned"
    folder = checkpoints.checkpoint_dir(run, 6)
    trainer_state = folder / checkpoints.TRAINER_FILE
    write_malicious(trainer_state, target)
    manifest = json.loads((folder / checkpoints.MANIFEST_FILE).read_text())
    content = trainer_state.read_bytes()
    manifest["files"][checkpoints.TRAINER_FILE] = {
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    (folder / checkpoints.MANIFEST_FILE).write_text(json.dumps(manifest))
    done = _nddr("train", "--resume", str(run), "optim.steps=9")
    assert done.returncode == 2
    assert "would run code when loaded; refusing it" in done.stderr
    assert "Traceback" not in done.stderr and not target.exists()

    weights = tmp_path / "backbone.pth"
    write_malicious(weights, target)
    done = _nddr(
        "train",
        str(config),
        f"run.out={tmp_path}",
        "name=other",
        f"model.backbone_weights={weights}",
    )
    assert done.returncode == 2
    assert "would run code when loaded; refusing it" in done.stderr
    assert "Traceback" not in done.stderr and not target.exists()
