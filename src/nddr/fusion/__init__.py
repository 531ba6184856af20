"""Fusion at stage ends: K task features in, K out (paper §3), and the head-input paths (§3.3).

Every fusion module has the one interface ``forward(features: Sequence[Tensor]) -> list[Tensor]``
and is built as ``(channels, num_tasks, ...)``. The kinds are listed in :mod:`nddr.fusion.registry`
(:data:`FUSIONS` is a view of it). The layer classes are imported on first access, so the registry
can be read without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nddr.fusion.registry import (
    FUSIONS,
    FusionEntry,
    Shares,
    fusion_entry,
    register_fusion,
    unregister_fusion,
)
from nddr.lazy import lazy_exports

if TYPE_CHECKING:
    from nddr.fusion.base import Fusion, diagonal_mixing
    from nddr.fusion.cross_stitch import CrossStitch
    from nddr.fusion.nddr import NDDR
    from nddr.fusion.shortcut import LastStage, Shortcut
    from nddr.fusion.sluice import LayerSelection, Sluice

_LAZY = {
    "Fusion": "nddr.fusion.base",
    "diagonal_mixing": "nddr.fusion.base",
    "CrossStitch": "nddr.fusion.cross_stitch",
    "NDDR": "nddr.fusion.nddr",
    "LastStage": "nddr.fusion.shortcut",
    "Shortcut": "nddr.fusion.shortcut",
    "LayerSelection": "nddr.fusion.sluice",
    "Sluice": "nddr.fusion.sluice",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "FUSIONS",
    "NDDR",
    "CrossStitch",
    "Fusion",
    "FusionEntry",
    "LastStage",
    "LayerSelection",
    "Shares",
    "Shortcut",
    "Sluice",
    "diagonal_mixing",
    "fusion_entry",
    "register_fusion",
    "unregister_fusion",
]
