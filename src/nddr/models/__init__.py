"""Networks: fusion layers, staged backbones, heads, and the one builder for every variant.

``fusion/`` holds the fusion kinds and their registry, ``backbones/`` the staged backbones,
:mod:`~nddr.models.heads` the task heads, :mod:`~nddr.models.builder` the builder of the K-column
and shared-trunk networks (:mod:`~nddr.models.network`), :mod:`~nddr.models.grouped` their
grouped-convolution execution, :mod:`~nddr.models.transfer` weight files and the single-task
initialisation, and :mod:`~nddr.models.analysis` what trained fusion layers exchange. The names
below load their module on first access, so the torch-free registry can be read without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nddr.lazy import lazy_exports

if TYPE_CHECKING:
    from nddr.models.builder import VARIANTS, build_network, head_specs
    from nddr.models.network import MultiTaskNetwork
    from nddr.models.transfer import (
        init_from_single_task,
        load_network_file,
        load_weights,
        save_network,
    )

_LAZY = {
    "VARIANTS": "nddr.models.builder",
    "build_network": "nddr.models.builder",
    "head_specs": "nddr.models.builder",
    "MultiTaskNetwork": "nddr.models.network",
    "init_from_single_task": "nddr.models.transfer",
    "load_network_file": "nddr.models.transfer",
    "load_weights": "nddr.models.transfer",
    "save_network": "nddr.models.transfer",
}

__getattr__ = lazy_exports(__name__, _LAZY)

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
