"""Loss balancing (``optim.balancing``): how the K task losses become one update.

:mod:`~nddr.training.balancing.registry` lists the methods (one owner: name -> class, options,
torchjd aggregator) without importing torch; :mod:`~nddr.training.balancing.base` is their one
interface; :mod:`~nddr.training.balancing.loss_based` the paper's fixed weights, uncertainty
weighting and DWA; :mod:`~nddr.training.balancing.jacobian` the torchjd aggregators on the shared
parameters that :mod:`~nddr.training.balancing.shared` finds; :func:`build_balancer` builds an
experiment's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nddr.lazy import lazy_exports
from nddr.training.balancing.registry import BALANCING, DEFAULT_BALANCING

if TYPE_CHECKING:
    from nddr.training.balancing.base import Balancer
    from nddr.training.balancing.build import build_balancer

_LAZY = {
    "Balancer": "nddr.training.balancing.base",
    "build_balancer": "nddr.training.balancing.build",
}

__getattr__ = lazy_exports(__name__, _LAZY)

__all__ = ["BALANCING", "DEFAULT_BALANCING", "Balancer", "build_balancer"]
