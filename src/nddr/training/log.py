"""What a run records: a JSONL line per logged step and TensorBoard scalars (main process only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nddr.training.run_folder import LOG_FILE, TENSORBOARD_DIR


class RunLog:
    """``log.jsonl`` (one JSON object per logged step or evaluation) and TensorBoard scalars.

    On resume, entries after the resumed step are dropped from both, so the log reads as one
    uninterrupted run.
    """

    def __init__(self, run_dir: Path, start_step: int, enabled: bool) -> None:
        self.enabled = enabled
        self.path = run_dir / LOG_FILE
        self.writer = None
        if not enabled:
            return
        if self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and _step(line) <= start_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.file = open(self.path, "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=start_step + 1)
        except ImportError:
            self.writer = None

    def write(self, step: int, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps({"step": step, **record}) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in _flatten(record).items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.writer is not None:
                self.writer.close()


def _step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 0


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
