"""Fusion at stage ends: K task features in, K out (paper §3), and the head-input paths (§3.3).

Every fusion module has the one interface ``forward(features: Sequence[Tensor]) -> list[Tensor]``
and is built as ``(channels, num_tasks, ...)``.
"""

from nddr.fusion.base import Fusion, diagonal_mixing
from nddr.fusion.cross_stitch import CrossStitch
from nddr.fusion.nddr import NDDR
from nddr.fusion.shortcut import LastStage, Shortcut
from nddr.fusion.sluice import LayerSelection, Sluice

FUSIONS: dict[str, type[Fusion]] = {"nddr": NDDR, "cross_stitch": CrossStitch, "sluice": Sluice}

__all__ = [
    "FUSIONS",
    "NDDR",
    "CrossStitch",
    "Fusion",
    "LastStage",
    "LayerSelection",
    "Shortcut",
    "Sluice",
    "diagonal_mixing",
]
