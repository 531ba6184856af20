"""The balancing registry: every way of combining the task losses, in one place.

One :class:`BalancingEntry` per method (``optim.balancing``) names its class, says in one line
what it does, lists the options it takes (``optim.balancing_options``) with their defaults, and,
for the gradient methods, names the torchjd aggregator. Config validation, the trainer, the
benchmark and the README read these entries; none of them names a method. This module does not
import torch: classes are ``"module:attribute"`` references, resolved on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nddr.errors import NddrError, unknown_choice

DEFAULT_BALANCING = "fixed"

_LOSS_BASED = "nddr.training.balancing.loss_based"
_JACOBIAN = "nddr.training.balancing.jacobian:JacobianDescent"


@dataclass(frozen=True)
class BalancingEntry:
    """One balancing method.

    Attributes:
        name: ``optim.balancing``.
        balancer: The :class:`~nddr.training.balancing.base.Balancer` subclass as
            ``"module:attribute"``.
        description: One line for the README and errors.
        options: The options it takes (``optim.balancing_options``) -> default.
        aggregator: For a gradient method, the ``torchjd.aggregation`` class; ``None`` for a
            loss-based one.
    """

    name: str
    balancer: str
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)
    aggregator: str | None = None

    @property
    def gradient_based(self) -> bool:
        """Aggregates the tasks' gradients of the shared parameters (torchjd) instead of
        weighting the losses."""
        return self.aggregator is not None

    def balancer_class(self) -> type:
        module, _, attribute = self.balancer.partition(":")
        return getattr(importlib.import_module(module), attribute)


def _gradient(name: str, aggregator: str, description: str, **options: Any) -> BalancingEntry:
    return BalancingEntry(name, _JACOBIAN, description, options, aggregator)


BALANCING: dict[str, BalancingEntry] = {
    entry.name: entry
    for entry in (
        BalancingEntry(
            "fixed",
            f"{_LOSS_BASED}:FixedWeights",
            "the weighted sum of the task losses, weights optim.loss_weights (the paper's)",
        ),
        BalancingEntry(
            "uncertainty",
            f"{_LOSS_BASED}:UncertaintyWeighting",
            "learned homoscedastic uncertainty: sum exp(-s_k) L_k / 2 + s_k / 2 (Kendall et al., "
            "CVPR 2018)",
            {"init": 0.0},
        ),
        BalancingEntry(
            "dwa",
            f"{_LOSS_BASED}:DynamicWeightAverage",
            "dynamic weight average: K softmax(r_k / T), r_k the ratio of task k's mean loss over "
            "the last two windows (Liu et al., CVPR 2019)",
            {"temperature": 2.0, "window": None},
        ),
        _gradient("upgrad", "UPGrad", "Jacobian descent with UPGrad (Quinton & Rey, 2024)"),
        _gradient(
            "mgda", "MGDA", "MGDA: the min-norm point of the gradients' hull (Sener & Koltun, 2018)"
        ),
        _gradient("pcgrad", "PCGrad", "PCGrad: conflicting gradients projected (Yu et al., 2020)"),
        _gradient("cagrad", "CAGrad", "CAGrad: conflict-averse gradient (Liu et al., 2021)", c=0.5),
        _gradient(
            "nash_mtl", "NashMTL", "Nash-MTL: the Nash bargaining solution (Navon et al., 2022)"
        ),
        _gradient("dualproj", "DualProj", "DualProj: the mean projected onto the dual cone"),
        _gradient("imtl_g", "IMTLG", "IMTL-G: equal projections on the update (Liu et al., 2021)"),
        _gradient(
            "aligned_mtl",
            "AlignedMTL",
            "Aligned-MTL: the aligned gradients (Senushkin et al., 2023)",
        ),
    )
}
"""``optim.balancing`` -> its entry; ``fixed`` first (the default)."""


def balancing_choices() -> str:
    """The methods, for the config reference."""
    return ", ".join(BALANCING)


def balancing_entry(name: str) -> BalancingEntry:
    """The entry of ``name``; an unknown one is a one-line error listing the methods."""
    if name not in BALANCING:
        raise unknown_choice("optim.balancing method", str(name), BALANCING)
    return BALANCING[name]


def check_balancing(name: object, options: Mapping[str, Any]) -> None:
    """Raise a one-line :class:`NddrError` for an unknown method, an option the method does not
    take, or an option of the wrong type (a number where the default is one)."""
    if not isinstance(name, str):
        raise NddrError(f"optim.balancing {name!r} is not a name: use one of {balancing_choices()}")
    entry = balancing_entry(name)
    for key, value in options.items():
        if key not in entry.options:
            takes = f"it takes {', '.join(entry.options)}" if entry.options else "it takes none"
            raise NddrError(f"optim.balancing_options: {name} has no option {key!r}: {takes}")
        if not _fits(value, entry.options[key]):
            raise NddrError(
                f"optim.balancing_options.{key} = {value!r} is not a number: give one, e.g. "
                f"{entry.options[key] if entry.options[key] is not None else 100}"
            )


def _fits(value: object, default: object) -> bool:
    """A number (an int, or a float where the default is a float), or None where the default
    is None (then any whole number)."""
    if isinstance(value, bool):
        return False
    if default is None:
        return value is None or isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def balancing_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The method's options: its defaults overlaid with ``options`` (checked)."""
    check_balancing(name, options)
    return {**BALANCING[name].options, **options}
