"""Training and evaluation: the one loop, checkpoints, logs, DDP; loading runs back."""

from nddr.engine.evaluate import evaluate, format_results
from nddr.engine.load import find_model_file, load_model, load_network, load_run
from nddr.engine.trainer import Trainer, train

__all__ = [
    "Trainer",
    "evaluate",
    "find_model_file",
    "format_results",
    "load_model",
    "load_network",
    "load_run",
    "train",
]
