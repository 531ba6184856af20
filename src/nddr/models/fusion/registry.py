"""The fusion registry: every fusion kind, and the network variants, in one place.

One :class:`FusionEntry` per kind says what the rest of nddr needs to know of it: its class, a
one-line description, what its heads read (a head input built from the stage widths, such as
sluice's layer selection), what its extra training loss is called, and how ``nddr inspect``
reads its task shares. Config validation, the builder, the CLI, the benchmark, the analysis and
the training loop all read these entries; none of them names a kind. The variants are the two
baselines without fusion (:data:`BASELINES`) followed by the registered kinds.

A new fusion is a :class:`~nddr.models.fusion.Fusion` subclass and one :func:`register_fusion` call
(below for the built-in kinds, or from the user's own code). This module does not import torch:
classes are ``"module:attribute"`` references, resolved on first use, so configs and the CLI can
list and check variants without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nddr.errors import NddrError

if TYPE_CHECKING:
    from torch import nn

    from nddr.models.fusion.base import Fusion

BASELINES: Mapping[str, str] = {
    "single": "K independent single-task columns (single-task baseline)",
    "multi": "one shared column split into K heads after the last stage (multi-task baseline)",
}
"""The variants without fusion layers -> their descriptions."""

SINGLE_TASK, SHARED_TRUNK = BASELINES
"""The single-task baseline (one column per task) and the multi-task one (one shared column)."""

SHORTCUT_SUFFIX = "_shortcut"
"""``nddr bench`` names a fused variant with shortcut=True ``<kind>_shortcut``."""


@dataclass(frozen=True)
class Shares:
    """How ``nddr inspect`` reads a fusion layer: its ``block_norms()`` are the K x K norms of
    the blocks mapping task j's input to task k's output, and these are the words for them."""

    basis: str  # what the shares are ratios of, e.g. "block norms of the 1x1 weights"
    block: str  # the block's symbol in the heatmap caption, e.g. "W_kj"
    fold_bn: bool = False  # the layer has a batch norm that ``fold_bn`` folds into the blocks


@dataclass(frozen=True)
class FusionEntry:
    """One fusion kind.

    Attributes:
        name: The variant name (``model.variant``, ``build_network(variant=...)``) and the
            training-log prefix of its shares.
        fusion: The :class:`~nddr.models.fusion.Fusion` subclass, or ``"module:attribute"`` naming it.
        description: One line for ``nddr models``.
        title: The layers' name in tables and errors ("NDDR" -> "NDDR 3").
        head_input: Without a shortcut, the module each column's heads read instead of the last
            stage, built as ``head_input(stage_channels)`` (class or ``"module:attribute"``);
            ``None``: the last stage.
        auxiliary_loss: What the layers' ``auxiliary_loss()`` is, for messages (``None``: none).
        shares: How ``nddr inspect`` reads the layers (``None``: it skips them).
    """

    name: str
    fusion: str | type
    description: str
    title: str
    head_input: str | type | None = None
    auxiliary_loss: str | None = None
    shares: Shares | None = None

    def fusion_class(self) -> type[Fusion]:
        """The fusion class (importing it on first use)."""
        from nddr.models.fusion.base import Fusion

        cls = _resolve(self.fusion)
        if not (isinstance(cls, type) and issubclass(cls, Fusion)):
            raise NddrError(
                f"fusion {self.name!r}: {self.fusion!r} is not a Fusion subclass; register a "
                "subclass of nddr.models.fusion.Fusion"
            )
        return cls

    def head_input_class(self) -> type[nn.Module] | None:
        """The head input class, or ``None`` when the heads read the last stage."""
        return None if self.head_input is None else _resolve(self.head_input)


def _resolve(reference: str | type) -> type:
    """The class a ``"module:attribute"`` reference names (a class is returned as it is)."""
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError):
        raise NddrError(
            f"fusion registry: {reference!r} names nothing importable; give 'module:attribute' "
            "of a class, e.g. 'nddr.models.fusion.nddr:NDDR'"
        ) from None


_ENTRIES: dict[str, FusionEntry] = {}


def register_fusion(
    name: str,
    fusion: str | type,
    description: str,
    *,
    title: str | None = None,
    head_input: str | type | None = None,
    auxiliary_loss: str | None = None,
    shares: Shares | None = None,
) -> FusionEntry:
    """Add a fusion kind: from then on ``name`` is a variant everywhere (configs, the builder,
    ``nddr models``, ``nddr bench``, ``nddr inspect``). See :class:`FusionEntry` for the
    arguments; ``title`` defaults to the class name. Returns the entry."""
    if not name.isidentifier() or name in variants() or name.endswith(SHORTCUT_SUFFIX):
        raise NddrError(
            f"cannot register fusion {name!r}: use a new identifier, not one of "
            f"{', '.join(variants())}, not ending in {SHORTCUT_SUFFIX!r}"
        )
    if title is None:
        title = fusion.rpartition(":")[2] if isinstance(fusion, str) else fusion.__name__
    entry = FusionEntry(name, fusion, description, title, head_input, auxiliary_loss, shares)
    _ENTRIES[name] = entry
    return entry


def unregister_fusion(name: str) -> None:
    """Remove a fusion kind added with :func:`register_fusion`."""
    if name not in _ENTRIES:
        raise NddrError(f"no fusion {name!r} is registered: registered are {', '.join(_ENTRIES)}")
    del _ENTRIES[name]


def fusion_names() -> tuple[str, ...]:
    """The registered fusion kinds, in registration order."""
    return tuple(_ENTRIES)


def fusion_entry(name: str) -> FusionEntry | None:
    """The entry of fusion kind ``name``; ``None`` for a baseline or an unknown name."""
    return _ENTRIES.get(name)


def entry_of(module: object) -> FusionEntry | None:
    """The entry whose class ``module`` is an instance of (its own class first); ``None`` for
    a module of no registered kind."""
    entries = list(_ENTRIES.values())
    for entry in entries:
        if type(module) is entry.fusion_class():
            return entry
    for entry in entries:
        if isinstance(module, entry.fusion_class()):
            return entry
    return None


def auxiliary_loss_name(fusions: Iterable[object]) -> str:
    """What the auxiliary loss of these fusion layers is called, for messages."""
    names = dict.fromkeys(
        entry.auxiliary_loss
        for fusion in fusions
        if (entry := entry_of(fusion)) is not None and entry.auxiliary_loss is not None
    )
    return " and ".join(names) or "the fusion layers' extra loss"


def variants() -> dict[str, str]:
    """Every variant -> its description: the baselines, then the fusion kinds."""
    return {**BASELINES, **{name: entry.description for name, entry in _ENTRIES.items()}}


def variant_choices(quote: bool = False) -> str:
    """The variants as text: ``single, multi, ... or nddr`` (each in quotes with ``quote``)."""
    names = [repr(name) if quote else name for name in variants()]
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


def variant_error(name: object) -> str | None:
    """Why ``name`` is not a variant (one line listing them), or ``None`` if it is one."""
    if isinstance(name, str) and name in variants():
        return None
    return f"Input should be {variant_choices(quote=True)}"


def bench_variants() -> dict[str, tuple[str, bool]]:
    """``nddr bench``'s names -> (variant, shortcut): every variant, and every fusion kind with
    the shortcut as ``<kind>_shortcut``."""
    names = {name: (name, False) for name in variants()}
    names.update({f"{name}{SHORTCUT_SUFFIX}": (name, True) for name in _ENTRIES})
    return names


class _Variants(Mapping[str, str]):
    """A live read-only view: variant name -> description."""

    def __getitem__(self, name: str) -> str:
        return variants()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(variants())

    def __len__(self) -> int:
        return len(variants())

    def __repr__(self) -> str:
        return repr(variants())


class _FusionClasses(Mapping[str, "type[Fusion]"]):
    """A live read-only view: fusion kind -> its class (imported on access)."""

    def __getitem__(self, name: str) -> type[Fusion]:
        return _ENTRIES[name].fusion_class()

    def __iter__(self) -> Iterator[str]:
        return iter(_ENTRIES)

    def __len__(self) -> int:
        return len(_ENTRIES)

    def __repr__(self) -> str:
        return repr({name: entry.fusion for name, entry in _ENTRIES.items()})


VARIANTS: Mapping[str, str] = _Variants()
"""Every variant -> its description (a live view of the registry)."""

FUSIONS: Mapping[str, type[Fusion]] = _FusionClasses()
"""Every fusion kind -> its class (a live view of the registry)."""

register_fusion(
    "cross_stitch",
    "nddr.models.fusion.cross_stitch:CrossStitch",
    "K columns with cross-stitch units after every stage (Misra et al. 2016)",
    title="Cross-stitch",
    shares=Shares("norms of the alphas of each task pair", "a_kj"),
)
register_fusion(
    "sluice",
    "nddr.models.fusion.sluice:Sluice",
    "K columns with sluice alpha after every stage and beta layer selection (Ruder et al. 2019)",
    title="Sluice",
    head_input="nddr.models.fusion.sluice:LayerSelection",
    auxiliary_loss="the sluice penalty",
    shares=Shares("norms of the alpha blocks between the tasks' subspaces", "alpha_kj"),
)
register_fusion(
    "nddr",
    "nddr.models.fusion.nddr:NDDR",
    "K columns with NDDR layers after every stage (NDDR-CNN, Gao et al. 2019)",
    title="NDDR",
    shares=Shares("block norms of the 1x1 weights", "W_kj", fold_bn=True),
)

register_fusion(
    "nddr_grouped",
    "nddr.models.fusion.grouped_nddr:GroupedNDDR",
    "K columns with NDDR layers in G channel groups after every stage (1/G of NDDR's cost)",
    title="Grouped NDDR",
    shares=Shares("block norms of the equivalent dense 1x1 weights", "W_kj", fold_bn=True),
)
register_fusion(
    "nddr_lowrank",
    "nddr.models.fusion.low_rank_nddr:LowRankNDDR",
    "K columns with NDDR layers as diagonal + rank-r 1x1 weights after every stage",
    title="Low-rank NDDR",
    shares=Shares("block norms of the diagonal + low-rank 1x1 weights", "W_kj", fold_bn=True),
)

DEFAULT_VARIANT = "nddr"
"""The paper's method: the variant configs and :func:`nddr.build_network` default to."""
