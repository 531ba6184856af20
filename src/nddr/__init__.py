"""nddr: multi-task CNNs that fuse features at every layer (NDDR-CNN, Gao et al., CVPR 2019).

The NDDR layer and the fusion baselines (:class:`NDDR`, :class:`CrossStitch`, :class:`Sluice`),
staged backbones, heads, the one builder for every variant of the paper (:func:`build_network`),
and the paper's parameter-group rules (:func:`parameter_groups`).
"""

from nddr.backbones import BACKBONES, StagedBackbone, build_backbone
from nddr.errors import NddrError
from nddr.fusion import NDDR, CrossStitch, LayerSelection, Shortcut, Sluice
from nddr.heads import HeadSpec
from nddr.network import (
    VARIANTS,
    MultiTaskNetwork,
    build_network,
    init_from_single_task,
    load_network,
    load_weights,
    save_network,
)
from nddr.param_groups import parameter_groups

__version__ = "0.1.0"

__all__ = [
    "BACKBONES",
    "NDDR",
    "VARIANTS",
    "CrossStitch",
    "HeadSpec",
    "LayerSelection",
    "MultiTaskNetwork",
    "NddrError",
    "Shortcut",
    "Sluice",
    "StagedBackbone",
    "build_backbone",
    "build_network",
    "init_from_single_task",
    "load_network",
    "load_weights",
    "parameter_groups",
    "save_network",
]
