"""The one builder for every network variant of the paper."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from torch import nn

from nddr.backbones import StagedBackbone, build_backbone
from nddr.errors import NddrError, unknown_choice
from nddr.fusion import FUSIONS, LastStage, LayerSelection, Shortcut
from nddr.heads import HEADS, HeadSpec, build_head
from nddr.network.model import MultiTaskNetwork

VARIANTS: dict[str, str] = {
    "single": "K independent single-task columns (single-task baseline)",
    "multi": "one shared column split into K heads after the last stage (multi-task baseline)",
    "cross_stitch": "K columns with cross-stitch units after every stage (Misra et al. 2016)",
    "sluice": "K columns with sluice alpha after every stage and beta layer selection (Ruder et al. 2019)",
    "nddr": "K columns with NDDR layers after every stage (NDDR-CNN, Gao et al. 2019)",
}

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
    if variant in FUSIONS:
        FUSIONS[variant].check_options(options)
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
                f"would be ignored: drop it or use {', '.join(FUSIONS)}"
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


def build_network(
    backbone: str | StagedBackbone,
    tasks: TaskList,
    variant: str = "nddr",
    *,
    shortcut: bool = False,
    backbone_weights: object = None,
    backbone_options: Mapping[str, object] | None = None,
    fusion_options: Mapping[str, object] | None = None,
    head_options: Mapping[str, Mapping[str, object]] | None = None,
) -> MultiTaskNetwork:
    """Build any network of the paper from (backbone, tasks, variant, shortcut).

    Args:
        backbone: A backbone name (see :data:`nddr.backbones.BACKBONES`, or ``"timm:MODEL"``) or
            a :class:`StagedBackbone` of the user's own modules.
        tasks: :class:`HeadSpec`s, or ``{name: out_channels}`` for dense tasks.
        variant: One of :data:`VARIANTS`.
        shortcut: Route every stage's (fused) output to the heads (NDDR-CNN-Shortcut, §3.3).
        backbone_weights: Weights for the backbone (ImageNet, paper §4.3); every column starts
            from them. Single-task checkpoints load after building, with
            :func:`nddr.init_from_single_task`.
        backbone_options: Options of the backbone builder (e.g. ``output_stride=16``).
        fusion_options: Options of the fusion module (e.g. ``init=(1.0, 0.0)`` for NDDR);
            ``single`` and ``multi`` have none and refuse one that is not a fusion default
            (:func:`check_fusion_options`).
        head_options: Per head kind, options of its constructor, e.g. ``{"lfov": {"width": 512}}``.

    Every column starts as a copy of the one backbone, so all start from the same weights.
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
        }
        backbone = build_backbone(backbone, weights=backbone_weights, **backbone_options)
    num_tasks = len(specs)
    num_columns = 1 if variant == "multi" else num_tasks
    columns = [backbone] + [copy.deepcopy(backbone) for _ in range(num_columns - 1)]

    fusions = None
    if variant in FUSIONS:
        try:
            fusions = [
                FUSIONS[variant](width, num_tasks, **fusion_options) for width in backbone.channels
            ]
        except ValueError as error:
            raise NddrError(
                f"variant {variant!r} does not fit backbone {backbone.name!r}, whose stages have "
                f"{', '.join(map(str, backbone.channels))} channels: {error}"
            ) from None

    head_inputs: dict[str, nn.Module] = {}
    for spec in specs:
        if shortcut:
            head_inputs[spec.name] = Shortcut(backbone.channels)
        elif variant == "sluice":
            head_inputs[spec.name] = LayerSelection(backbone.channels)
        else:
            head_inputs[spec.name] = LastStage()

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
            heads[spec.name] = build_head(kind, backbone.channels[-1], spec.out_channels, **options)
        except (TypeError, ValueError) as error:
            raise NddrError(
                f"head {kind!r} of task {spec.name!r}: bad head option ({error})"
            ) from None
    return MultiTaskNetwork(columns, fusions, head_inputs, heads, config=config)
