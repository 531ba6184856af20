"""Multi-task networks: the model, the one builder for every variant, and weight transfer."""

from nddr.network.builder import VARIANTS, build_network, head_specs
from nddr.network.model import MultiTaskNetwork
from nddr.network.transfer import (
    init_from_single_task,
    load_network_file,
    load_weights,
    save_network,
)

__all__ = [
    "VARIANTS",
    "MultiTaskNetwork",
    "build_network",
    "head_specs",
    "init_from_single_task",
    "load_network_file",
    "load_weights",
    "save_network",
]
