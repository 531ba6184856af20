"""The one builder for every network variant of the paper."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from torch import Tensor, nn

from nddr.errors import NddrError, unknown_choice
from nddr.models.backbones import StagedBackbone, build_backbone
from nddr.models.fusion.base import BATCH_NORM_RANGES
from nddr.models.fusion.registry import (
    DEFAULT_VARIANT,
    FUSIONS,
    SHARED_TRUNK,
    VARIANTS,
    fusion_entry,
    fusion_names,
)
from nddr.models.fusion.shortcut import LastStage, Shortcut
from nddr.models.heads import HEADS, HeadSpec, build_head
from nddr.models.network import MultiTaskNetwork

TaskList = Sequence[HeadSpec | Mapping[str, object]] | Mapping[str, int]


def head_specs(tasks: TaskList) -> list[HeadSpec]:
    """Normalise ``tasks`` (HeadSpecs, their dicts, or ``{name: out_channels}``) to HeadSpecs."""
    if isinstance(tasks, Mapping):
        specs = [HeadSpec(name, int(size)) for name, size in tasks.items()]
    else:
        specs = [task if isinstance(task, HeadSpec) else HeadSpec(**task) for task in tasks]
    if not specs:
        raise NddrError("no tasks given: a network needs at least one task")
    names = [spec.name for spec in specs]
    for name in names:
        if not name or "." in name or not name.isprintable():
            raise NddrError(f"task name {name!r} is not usable: use letters, digits and '_' only")
    if len(set(names)) != len(names):
        raise NddrError(f"task names repeat: {names}")
    return specs


def check_fusion_options(variant: str, options: Mapping[str, object]) -> None:
    """Raise a one-line ValueError unless ``options`` fit ``variant``'s fusion layer.

    ``single`` and ``multi`` have no fusion layer: they take only options that leave every
    fusion at its default (as a base config shared with the fused variants may give), so an
    option that would change something is never silently dropped.
    """
    entry = fusion_entry(variant)
    if entry is not None:
        entry.fusion_class().check_options(options)
        return
    for key, value in options.items():
        defaults = [
            fusion.option_defaults()[key]
            for fusion in FUSIONS.values()
            if key in fusion.option_defaults()
        ]
        if not defaults or any(_differs(value, default) for default in defaults):
            raise ValueError(
                f"variant {variant!r} has no fusion layers, so fusion option {key}={value!r} "
                f"would be ignored: drop it or use {', '.join(fusion_names())}"
            )


def _differs(value: object, default: object) -> bool:
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = tuple(value)
    return value != default


def check_head_options(options: Mapping[str, Mapping[str, object]]) -> None:
    """Raise a one-line ValueError for an unknown head kind, an option its head does not take,
    or a bad value: the heads' integer options (widths, dilations) are positive integers and
    their float ones dropout probabilities in [0, 1). Which kinds a network uses is checked
    when it is built."""
    for kind, given in options.items():
        if kind not in HEADS:
            raise ValueError(f"there is no head {kind!r}: heads are {', '.join(HEADS)}")
        parameters = list(inspect.signature(HEADS[kind]).parameters.values())[2:]
        defaults = {parameter.name: parameter.default for parameter in parameters}
        for key, value in given.items():
            if key not in defaults:
                raise ValueError(
                    f"head {kind!r} has no option {key!r}; it takes {', '.join(defaults)}"
                )
            if not _fits(value, defaults[key]):
                raise ValueError(
                    f"head {kind!r} option {key} = {value!r} is not valid: use "
                    f"{_HEAD_VALUES[type(defaults[key])]}"
                )


_HEAD_VALUES = {
    int: "a positive integer",
    float: "a probability in [0, 1)",
    tuple: "a non-empty list of positive integers",
}


def _fits(value: object, default: object) -> bool:
    """Whether ``value`` is of the kind of the head option whose default is ``default``."""
    if isinstance(default, tuple):
        return (
            isinstance(value, (list, tuple))
            and len(value) > 0
            and all(_fits(item, default[0]) for item in value)
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(default, int):
        return isinstance(value, int) and value >= 1
    return 0 <= value < 1


def check_batch_norm(bn_momentum: float | None = None, bn_eps: float | None = None) -> None:
    """Raise a one-line ValueError unless the columns' and heads' batch-norm settings are each
    ``None`` (the backbone's own) or a number in the range the fusion layers take for theirs."""
    for key, value in (("bn_momentum", bn_momentum), ("bn_eps", bn_eps)):
        if value is None:
            continue
        low, high = BATCH_NORM_RANGES[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not low <= value <= high:
            raise ValueError(
                f"{key} = {value!r}: use a number in [{low}, {high}], or null to keep the "
                "backbone's own"
            )


def _set_batch_norm(module: nn.Module, momentum: float | None, eps: float | None) -> None:
    """Set every batch norm in ``module`` to ``momentum`` and ``eps`` (``None`` leaves it)."""
    for norm in module.modules():
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            if momentum is not None:
                norm.momentum = momentum
            if eps is not None:
                norm.eps = eps


def _takes_state(module: nn.Module, state: Mapping[str, Tensor]) -> bool:
    """Whether every entry of the partial state dict ``state`` is one of ``module``'s, in shape."""
    target = module.state_dict()
    return all(key in target and target[key].shape == value.shape for key, value in state.items())


def build_network(
    backbone: str | StagedBackbone,
    tasks: TaskList,
    variant: str = DEFAULT_VARIANT,
    *,
    shortcut: bool = False,
    backbone_weights: object = None,
    backbone_options: Mapping[str, object] | None = None,
    fusion_options: Mapping[str, object] | None = None,
    head_options: Mapping[str, Mapping[str, object]] | None = None,
    bn_momentum: float | None = None,
    bn_eps: float | None = None,
) -> MultiTaskNetwork:
    """Build any network of the paper from (backbone, tasks, variant, shortcut).

    Args:
        backbone: A backbone name (see :data:`nddr.models.backbones.BACKBONES`, or ``"timm:MODEL"``) or
            a :class:`StagedBackbone` of the user's own modules.
        tasks: :class:`HeadSpec`s, or ``{name: out_channels}`` for dense tasks.
        variant: One of :data:`VARIANTS`: a baseline or a registered fusion kind
            (:mod:`nddr.models.fusion.registry`).
        shortcut: Route every stage's (fused) output to the heads (NDDR-CNN-Shortcut, §3.3).
        backbone_weights: Weights for the backbone (ImageNet, paper §4.3); every column starts
            from them. Single-task checkpoints load after building, with
            :func:`nddr.init_from_single_task`. What the backbone derives from them for its dense
            head (``StagedBackbone.head_init``: VGG-16's decimated fc6 / fc7) starts every head of
            that kind whose shapes it fits; a head of another shape (e.g. ``lfov`` width 512) has no
            such counterpart in the ImageNet network and starts from random init, as fc8 does.
        backbone_options: Options of the backbone builder (e.g. ``output_stride=16``).
        fusion_options: Options of the fusion module (e.g. ``init=(1.0, 0.0)``); the
            baselines have none and refuse one that is not a fusion default
            (:func:`check_fusion_options`).
        head_options: Per head kind, options of its constructor, e.g. ``{"lfov": {"width": 512}}``.
        bn_momentum, bn_eps: Set on every batch norm of the columns and heads (the released code:
            decay 0.95, i.e. momentum 0.05, and epsilon 1e-3); ``None`` keeps the backbone's own and
            PyTorch's for the heads. The fusion layers' batch norms take theirs from
            ``fusion_options`` and the shortcut's are the released code's; neither is set here.

    Every column starts as a copy of the one backbone, so all start from the same weights. Each
    column has one head input (the last stage, a shortcut, or the fusion kind's own head input
    such as sluice's layer selection): the multi-task baseline's one shortcut is part of its
    shared trunk, as in the released code.
    """
    if variant not in VARIANTS:
        raise unknown_choice("variant", variant, VARIANTS)
    specs = head_specs(tasks)
    backbone_options = dict(backbone_options or {})
    fusion_options = dict(fusion_options or {})
    head_options = {kind: dict(options) for kind, options in (head_options or {}).items()}
    try:
        check_fusion_options(variant, fusion_options)
    except ValueError as error:
        raise NddrError(f"fusion {variant!r}: bad fusion option ({error})") from None
    try:
        check_head_options(head_options)
    except ValueError as error:
        raise NddrError(f"bad head option ({error})") from None
    try:
        check_batch_norm(bn_momentum, bn_eps)
    except ValueError as error:
        raise NddrError(f"bad batch-norm setting ({error})") from None
    bn_momentum = None if bn_momentum is None else float(bn_momentum)
    bn_eps = None if bn_eps is None else float(bn_eps)
    config = None
    if isinstance(backbone, str):
        config = {
            "backbone": backbone,
            "tasks": [asdict(spec) for spec in specs],
            "variant": variant,
            "shortcut": shortcut,
            "backbone_options": backbone_options,
            "fusion_options": fusion_options,
            "head_options": head_options,
            "bn_momentum": bn_momentum,
            "bn_eps": bn_eps,
        }
        backbone = build_backbone(backbone, weights=backbone_weights, **backbone_options)
    head_init, backbone.head_init = backbone.head_init, None
    _set_batch_norm(backbone, bn_momentum, bn_eps)
    num_tasks = len(specs)
    num_columns = 1 if variant == SHARED_TRUNK else num_tasks
    columns = [backbone] + [copy.deepcopy(backbone) for _ in range(num_columns - 1)]

    entry = fusion_entry(variant)
    fusions = None
    head_input = None if entry is None else entry.head_input_class()
    if entry is not None:
        fusion = entry.fusion_class()
        try:
            fusions = [fusion(width, num_tasks, **fusion_options) for width in backbone.channels]
        except ValueError as error:
            raise NddrError(
                f"variant {variant!r} does not fit backbone {backbone.name!r}, whose stages have "
                f"{', '.join(map(str, backbone.channels))} channels: {error}"
            ) from None

    head_inputs: list[nn.Module] = []
    for _ in range(num_columns):
        if shortcut:
            head_inputs.append(Shortcut(backbone.channels))
        elif head_input is not None:
            head_inputs.append(head_input(backbone.channels))
        else:
            head_inputs.append(LastStage())

    kinds = {
        spec.name: spec.kind or (backbone.dense_head if spec.dense else "classifier")
        for spec in specs
    }
    unused = sorted(set(head_options) - set(kinds.values()))
    if unused:
        raise NddrError(
            f"head_options for head {unused[0]!r}, which this network does not use (backbone "
            f"{backbone.name!r} with these tasks uses {', '.join(sorted(set(kinds.values())))}): "
            "give options for a head it uses"
        )
    heads = {}
    for spec in specs:
        kind = kinds[spec.name]
        options = {"width": backbone.head_width} if kind == "lfov" else {}
        options.update(head_options.get(kind, {}))
        try:
            head = build_head(kind, backbone.channels[-1], spec.out_channels, **options)
        except (TypeError, ValueError) as error:
            raise NddrError(
                f"head {kind!r} of task {spec.name!r}: bad head option ({error})"
            ) from None
        if head_init is not None and kind == backbone.dense_head and _takes_state(head, head_init):
            head.load_state_dict(head_init, strict=False)
        _set_batch_norm(head, bn_momentum, bn_eps)
        heads[spec.name] = head
    return MultiTaskNetwork(columns, fusions, head_inputs, heads, config=config)
