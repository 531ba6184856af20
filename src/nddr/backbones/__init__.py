"""Staged backbones: torchvision VGG-16-LFOV, dilated ResNets, AlexNet, timm models, tiny, yours.

``build_backbone(name)`` makes any of them by name; ``"timm:NAME"`` takes any timm CNN.
"""

from __future__ import annotations

from collections.abc import Callable

from nddr.backbones.alexnet import alexnet
from nddr.backbones.resnet import resnet50, resnet101
from nddr.backbones.staged import StagedBackbone
from nddr.backbones.timm_adapter import timm_backbone
from nddr.backbones.tiny import tiny
from nddr.backbones.vgg import vgg16_lfov
from nddr.errors import NddrError, unknown_choice

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
    if name not in BACKBONES:
        raise unknown_choice("backbone", name, BACKBONES, also=" or timm:MODEL")
    try:
        return BACKBONES[name](weights=weights, **options)
    except TypeError as error:
        raise NddrError(f"backbone {name!r}: bad option ({error})") from None


__all__ = [
    "BACKBONES",
    "StagedBackbone",
    "alexnet",
    "build_backbone",
    "resnet50",
    "resnet101",
    "timm_backbone",
    "tiny",
    "vgg16_lfov",
]
