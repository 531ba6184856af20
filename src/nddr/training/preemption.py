"""Stopping a run on a signal without losing it: SIGTERM / SIGINT end the current step, a
checkpoint of that step is saved, and the command says how to resume."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from nddr.errors import NddrError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(NddrError):
    """Training stopped by a signal after a finished step, with a checkpoint of that step.

    The message says which signal, the step, the checkpoint and the command that resumes the run;
    ``exit_status`` is the shell's 128 + signal number.
    """

    def __init__(
        self,
        signum: int,
        step: int,
        checkpoint: Path,
        run_dir: Path,
        distributed: bool = False,
        is_main: bool = True,
    ) -> None:
        self.signum, self.step, self.checkpoint, self.is_main = signum, step, checkpoint, is_main
        self.signal_name = signal.Signals(signum).name
        command = f"nddr train --resume {run_dir}"
        if distributed:
            command = f"torchrun <the same options> -m {command}"
        super().__init__(
            f"stopped by {self.signal_name} at step {step}; checkpoint saved at {checkpoint}; "
            f"resume with: {command}"
        )

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def ignore_stop_signals(worker_id: int = 0) -> None:
    """``worker_init_fn`` of the training process's data loaders: SIGTERM / SIGINT sent to the
    whole process group (``timeout``, SLURM, Ctrl-C) leave the workers running, so the main
    process can finish its step and save; the loader shuts them down as usual afterwards, and
    they exit by themselves if the main process dies."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class StopSignals:
    """While installed, SIGTERM and SIGINT only note that the run should stop (the first one
    received), so the loop can finish its step and save instead of dying mid-write.

    A second signal is noted the same way: it cannot interrupt a checkpoint being saved.
    Only the main thread can install handlers; elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self.received = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._note)

    def restore(self) -> None:
        """Put back the handlers found at :meth:`install` (idempotent)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _note(self, signum: int, frame: Any) -> None:
        if not self.received:
            self.received = signum
