"""The one builder for every network variant of the paper."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from torch import nn

from nddr.backbones import StagedBackbone, build_backbone
from nddr.errors import NddrError, unknown_choice
from nddr.fusion import FUSIONS, LastStage, LayerSelection, Shortcut
from nddr.heads import HeadSpec, build_head
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
        fusion_options: Options of the fusion module (e.g. ``init=(1.0, 0.0)`` for NDDR); not
            used by ``single`` and ``multi``.
        head_options: Per head kind, options of its constructor, e.g. ``{"lfov": {"width": 512}}``.

    Every column starts as a copy of the one backbone, so all start from the same weights.
    """
    if variant not in VARIANTS:
        raise unknown_choice("variant", variant, VARIANTS)
    specs = head_specs(tasks)
    backbone_options = dict(backbone_options or {})
    fusion_options = dict(fusion_options or {})
    head_options = {kind: dict(options) for kind, options in (head_options or {}).items()}
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
        except (TypeError, ValueError) as error:
            raise NddrError(f"fusion {variant!r}: bad fusion option ({error})") from None

    head_inputs: dict[str, nn.Module] = {}
    for spec in specs:
        if shortcut:
            head_inputs[spec.name] = Shortcut(backbone.channels)
        elif variant == "sluice":
            head_inputs[spec.name] = LayerSelection(backbone.channels)
        else:
            head_inputs[spec.name] = LastStage()

    heads = {}
    for spec in specs:
        kind = spec.kind or (backbone.dense_head if spec.dense else "classifier")
        options = {"width": backbone.head_width} if kind == "lfov" else {}
        options.update(head_options.get(kind, {}))
        try:
            heads[spec.name] = build_head(kind, backbone.channels[-1], spec.out_channels, **options)
        except TypeError as error:
            raise NddrError(
                f"head {kind!r} of task {spec.name!r}: bad head option ({error})"
            ) from None
    return MultiTaskNetwork(columns, fusions, head_inputs, heads, config=config)
