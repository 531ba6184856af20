"""Training: the config, the optimizer's rules, the one loop, checkpoints, logs, DDP, run folders.

:mod:`~nddr.training.config` is the experiment's typed config, :mod:`~nddr.training.optimizer`
the paper's parameter groups, :mod:`~nddr.training.trainer` the loop (steps in
:mod:`~nddr.training.step`, evaluation in :mod:`~nddr.training.evaluate`),
:mod:`~nddr.training.checkpoint` and :mod:`~nddr.training.run_folder` what a run writes,
:mod:`~nddr.training.load` what reads it back, :mod:`~nddr.training.pipeline` the single-task ->
fused chain, :mod:`~nddr.training.distributed` DDP. The names below load on first access, so the
config is read without importing torch. The evaluation function is
:func:`nddr.training.evaluate.evaluate` (``nddr.training.evaluate`` is its module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nddr.lazy import lazy_exports

if TYPE_CHECKING:
    from nddr.training.evaluate import format_results
    from nddr.training.load import find_model_file, load_model, load_network, load_run
    from nddr.training.trainer import Trainer, train

_LAZY = {
    "Trainer": "nddr.training.trainer",
    "train": "nddr.training.trainer",
    "format_results": "nddr.training.evaluate",
    "find_model_file": "nddr.training.load",
    "load_model": "nddr.training.load",
    "load_network": "nddr.training.load",
    "load_run": "nddr.training.load",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "Trainer",
    "find_model_file",
    "format_results",
    "load_model",
    "load_network",
    "load_run",
    "train",
]
