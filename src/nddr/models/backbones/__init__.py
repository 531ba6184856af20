"""Staged backbones: torchvision VGG-16-LFOV, dilated ResNets, AlexNet, timm models, tiny, yours.

``build_backbone(name)`` makes any of them by name; ``"timm:NAME"`` takes a timm CNN whose
``features_only`` extractor can be cut into stages.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

from nddr.errors import NddrError, unknown_choice
from nddr.models.backbones.alexnet import alexnet
from nddr.models.backbones.resnet import resnet50, resnet101
from nddr.models.backbones.staged import StagedBackbone
from nddr.models.backbones.timm_adapter import timm_backbone
from nddr.models.backbones.tiny import tiny
from nddr.models.backbones.vgg import vgg16_lfov

BACKBONES: dict[str, Callable[..., StagedBackbone]] = {
    "vgg16_lfov": vgg16_lfov,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "alexnet": alexnet,
    "tiny": tiny,
}

TIMM_PREFIX = "timm:"


def build_backbone(name: str, weights: object = None, **options: object) -> StagedBackbone:
    """Build the named backbone, optionally loading ``weights`` (never downloaded unless asked).

    ``options`` go to the builder, e.g. ``output_stride=16`` for the ResNets or ``width=32`` for
    ``tiny``.
    """
    if name.startswith(TIMM_PREFIX):
        return timm_backbone(name[len(TIMM_PREFIX) :], weights=weights, **options)
    check_backbone_options(name, options)
    try:
        return BACKBONES[name](weights=weights, **options)
    except TypeError as error:
        raise NddrError(f"backbone {name!r}: bad option ({error})") from None


def check_backbone_options(name: str, options: Mapping[str, object]) -> None:
    """Raise a one-line :class:`NddrError` for an unknown backbone, an option its builder does
    not take, or an integer option (``width``, ``output_stride``) that is not a positive integer.
    A ``timm:`` backbone's options go to timm unchecked."""
    if name.startswith(TIMM_PREFIX):
        return
    if name not in BACKBONES:
        raise unknown_choice("backbone", name, BACKBONES, also=" or timm:MODEL")
    parameters = inspect.signature(BACKBONES[name]).parameters
    defaults = {key: value.default for key, value in parameters.items() if key != "weights"}
    for key, value in options.items():
        if key not in defaults:
            takes = f"it takes {', '.join(defaults)}" if defaults else "it takes none"
            raise NddrError(f"backbone {name!r} has no option {key!r}: {takes}")
        positive_integer = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if isinstance(defaults[key], int) and not positive_integer:
            raise NddrError(
                f"backbone {name!r} option {key} is a positive integer "
                f"(default {defaults[key]}), got {value!r}"
            )


__all__ = [
    "BACKBONES",
    "StagedBackbone",
    "alexnet",
    "build_backbone",
    "check_backbone_options",
    "resnet50",
    "resnet101",
    "timm_backbone",
    "tiny",
    "vgg16_lfov",
]
