"""Fusion at stage ends: K task features in, K out (paper §3), and the head-input paths (§3.3).

Every fusion module has the one interface ``forward(features: Sequence[Tensor]) -> list[Tensor]``
and is built as ``(channels, num_tasks, ...)``. The kinds are listed in :mod:`nddr.models.fusion.registry`
(:data:`FUSIONS` is a view of it). The layer classes are imported on first access, so the registry
can be read without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nddr.lazy import lazy_exports
from nddr.models.fusion.registry import (
    FUSIONS,
    FusionEntry,
    Shares,
    fusion_entry,
    register_fusion,
    unregister_fusion,
)

if TYPE_CHECKING:
    from nddr.models.fusion.base import Fusion, diagonal_mixing
    from nddr.models.fusion.cross_stitch import CrossStitch
    from nddr.models.fusion.grouped_nddr import GroupedNDDR
    from nddr.models.fusion.low_rank_nddr import LowRankNDDR
    from nddr.models.fusion.nddr import NDDR
    from nddr.models.fusion.shortcut import LastStage, Shortcut
    from nddr.models.fusion.sluice import LayerSelection, Sluice

_LAZY = {
    "Fusion": "nddr.models.fusion.base",
    "diagonal_mixing": "nddr.models.fusion.base",
    "CrossStitch": "nddr.models.fusion.cross_stitch",
    "GroupedNDDR": "nddr.models.fusion.grouped_nddr",
    "LowRankNDDR": "nddr.models.fusion.low_rank_nddr",
    "NDDR": "nddr.models.fusion.nddr",
    "LastStage": "nddr.models.fusion.shortcut",
    "Shortcut": "nddr.models.fusion.shortcut",
    "LayerSelection": "nddr.models.fusion.sluice",
    "Sluice": "nddr.models.fusion.sluice",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "FUSIONS",
    "NDDR",
    "CrossStitch",
    "Fusion",
    "FusionEntry",
    "GroupedNDDR",
    "LastStage",
    "LayerSelection",
    "LowRankNDDR",
    "Shares",
    "Shortcut",
    "Sluice",
    "diagonal_mixing",
    "fusion_entry",
    "register_fusion",
    "unregister_fusion",
]
