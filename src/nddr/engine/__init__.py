"""Training and evaluation: the one loop, checkpoints, logs, DDP."""

from nddr.engine.checkpoint import find_model_file, load_model
from nddr.engine.evaluate import evaluate, format_results
from nddr.engine.trainer import Trainer, train

__all__ = ["Trainer", "evaluate", "find_model_file", "format_results", "load_model", "train"]
