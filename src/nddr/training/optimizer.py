"""The optimizer: every learning-rate and weight-decay rule of the paper, in one place, and the
training loop's SGD built from an experiment's ``optim`` section."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nddr.models.network import MultiTaskNetwork

if TYPE_CHECKING:
    from nddr.training.config import OptimConfig

_DECAYED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)


def parameter_groups(
    network: MultiTaskNetwork,
    *,
    base_lr: float,
    weight_decay: float,
    fusion_lr_mult: float,
    classifier_lr_mult: float,
    classifier_bias_lr_mult: float,
    shortcut_lr_mult: float | None,
) -> list[dict[str, Any]]:
    """Split the network's parameters into optimizer groups by the paper's training rules.

    Every rate and the decay are the caller's (the paper's: ``weight_decay`` 5e-4 single-task /
    2.5e-4 two-task, ``fusion_lr_mult`` 100, ``classifier_lr_mult`` 10,
    ``classifier_bias_lr_mult`` 20; an experiment's are its ``optim`` section, passed by
    :func:`optimizer_groups`).

    - Fusion layers (NDDR, cross-stitch, sluice with its layer selection; conv and BN):
      ``fusion_lr_mult`` x the base rate (paper §4.2, Table 2: 100x), groups ``fusion/*``.
    - Shortcuts (conv and BN), groups ``shortcut/*``: ``shortcut_lr_mult`` x the base rate;
      ``None`` takes ``fusion_lr_mult``. The released code scales only NDDR variables, so
      NDDR-CNN-Shortcut's shortcuts (``nddr_shortcut_*``) train at the NDDR rate and the
      baselines' shortcut (``shortcuts``) at the base rate (``shortcut_lr_mult=1``).
    - The heads' last classifier layers: 10x (weights) and 20x (biases), as DeepLab.
    - Everything else: the base rate.
    - Weight decay on convolution and linear weights, and on the weights a fusion names in its
      ``DECAYED`` (low-rank NDDR's diagonal part, a piece of NDDR's decayed 1x1 weight); none on
      batch norm parameters, biases, cross-stitch or sluice units (released code).

    Each group carries ``lr`` (already scaled), ``lr_mult``, ``weight_decay``, a ``name`` and the
    ``param_names``; a scheduler scales every group's ``lr`` by the same factor.
    """
    fusion = {id(p) for module in network.fusion_modules() for p in module.parameters()}
    shortcut = {id(p) for module in network.shortcut_modules() for p in module.parameters()}
    if shortcut_lr_mult is None:
        shortcut_lr_mult = fusion_lr_mult
    classifier = {id(p) for layer in network.classifier_layers() for p in layer.parameters()}
    decayed = {id(module.weight) for module in network.modules() if isinstance(module, _DECAYED)}
    decayed |= {
        id(module.get_parameter(name))
        for module in network.fusion_modules()
        for name in getattr(module, "DECAYED", ())
    }
    groups: dict[str, dict[str, Any]] = {}
    for name, parameter in network.named_parameters():
        if not parameter.requires_grad:
            continue
        decay = id(parameter) in decayed
        if id(parameter) in fusion:
            group_name, lr_mult = f"fusion/{'decay' if decay else 'no_decay'}", fusion_lr_mult
        elif id(parameter) in shortcut:
            group_name, lr_mult = f"shortcut/{'decay' if decay else 'no_decay'}", shortcut_lr_mult
        elif id(parameter) in classifier:
            if decay:
                group_name, lr_mult = "classifier/weight", classifier_lr_mult
            else:
                group_name, lr_mult = "classifier/bias", classifier_bias_lr_mult
        else:
            group_name, lr_mult = f"base/{'decay' if decay else 'no_decay'}", 1.0
        group = groups.setdefault(
            group_name,
            {
                "name": group_name,
                "params": [],
                "param_names": [],
                "lr": base_lr * lr_mult,
                "lr_mult": lr_mult,
                "weight_decay": weight_decay if decay else 0.0,
            },
        )
        group["params"].append(parameter)
        group["param_names"].append(name)
    return list(groups.values())


def balancing_group(parameters: Sequence[Tensor], *, base_lr: float) -> dict[str, Any]:
    """The group of a balancing method's learned parameters (uncertainty weighting's
    log-variances): the base rate (and its schedule), no weight decay."""
    return {
        "name": "balancing",
        "params": list(parameters),
        "param_names": [f"balancing.{index}" for index in range(len(parameters))],
        "lr": base_lr,
        "lr_mult": 1.0,
        "weight_decay": 0.0,
    }


def training_optimizer(
    network: MultiTaskNetwork, optim: OptimConfig, balancing: Sequence[Tensor] = ()
) -> torch.optim.SGD:
    """The training loop's optimizer: SGD with ``optim``'s momentum over
    :func:`optimizer_groups` and, last, the :func:`balancing_group` of ``balancing`` when there
    are any (its poly schedule is the trainer's).

    PyTorch's fused SGD where the parameters' device has the kernel: decay, momentum and update
    in one pass per tensor, the per-tensor loop's update up to rounding (it fuses multiply-adds),
    in a third of the time on CPU (the loop's out-of-place decay add allocates a gradient-sized
    tensor per weight)."""
    groups = optimizer_groups(network, optim)
    if balancing:
        groups.append(balancing_group(balancing, base_lr=optim.lr))
    parameters = [p for group in groups for p in group["params"]]
    fused = {"fused": True} if has_fused_sgd(parameters) else {}
    return torch.optim.SGD(groups, lr=optim.lr, momentum=optim.momentum, **fused)


def has_fused_sgd(parameters: Sequence[Tensor]) -> bool:
    """Whether this torch's SGD has a fused kernel for every one of ``parameters`` (floating
    point, on a device it supports: CPU from torch 2.4)."""
    if "fused" not in inspect.signature(torch.optim.SGD).parameters:
        return False
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    except ImportError:
        return False
    devices = _get_fused_kernels_supported_devices()
    return all(p.is_floating_point() and p.device.type in devices for p in parameters)


def optimizer_groups(network: MultiTaskNetwork, optim: OptimConfig) -> list[dict[str, Any]]:
    """The optimizer parameter groups of ``network`` (:func:`parameter_groups`) at the rates
    and weight decay of ``optim``."""
    return parameter_groups(
        network,
        base_lr=optim.lr,
        weight_decay=optim.weight_decay,
        fusion_lr_mult=optim.fusion_lr_mult,
        classifier_lr_mult=optim.classifier_lr_mult,
        classifier_bias_lr_mult=optim.classifier_bias_lr_mult,
        shortcut_lr_mult=optim.shortcut_lr_mult,
    )
