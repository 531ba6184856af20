"""nddr: multi-task CNNs that fuse features at every layer (NDDR-CNN, Gao et al., CVPR 2019).

The top-level API covers a whole experiment:

- networks: the NDDR layer and the fusion baselines (:class:`NDDR`, :class:`CrossStitch`,
  :class:`Sluice`), staged backbones, heads, the one builder for every variant of the paper
  (:func:`build_network`) and the paper's parameter-group rules (:func:`parameter_groups`);
- data and tasks: :func:`build_dataset`, :class:`JointTransform`, :func:`build_tasks`;
- training: :func:`load_config`, :func:`train`;
- what training saved (:mod:`nddr.training.load`): :func:`load_run`, :func:`load_network`,
  :func:`load_weights`, :func:`save_network`, :func:`init_from_single_task`.

Importing ``nddr`` imports nothing heavy: each name is imported from its module on first use
(PEP 562), so ``import nddr.cli`` stays free of torch.
"""

from __future__ import annotations

from nddr import compat
from nddr.errors import NddrError
from nddr.lazy import lazy_exports

compat.install()

__version__ = "0.1.0"

_EXPORTS = {
    "BACKBONES": "nddr.models.backbones",
    "StagedBackbone": "nddr.models.backbones",
    "build_backbone": "nddr.models.backbones",
    "NDDR": "nddr.models.fusion",
    "CrossStitch": "nddr.models.fusion",
    "LayerSelection": "nddr.models.fusion",
    "Shortcut": "nddr.models.fusion",
    "Sluice": "nddr.models.fusion",
    "HeadSpec": "nddr.models.heads",
    "VARIANTS": "nddr.models",
    "MultiTaskNetwork": "nddr.models",
    "build_network": "nddr.models",
    "init_from_single_task": "nddr.models",
    "load_weights": "nddr.models",
    "save_network": "nddr.models",
    "parameter_groups": "nddr.training.optimizer",
    "build_dataset": "nddr.data",
    "JointTransform": "nddr.data",
    "build_tasks": "nddr.tasks",
    "load_config": "nddr.training.config",
    "train": "nddr.training",
    "load_network": "nddr.training.load",
    "load_run": "nddr.training.load",
}
"""Each public name and the module that defines (or exports) it."""

__all__ = ["NddrError", *sorted(_EXPORTS, key=str.lower)]


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
