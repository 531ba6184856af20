"""Any timm model as a staged backbone, with stage ends from its ``feature_info``."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from nddr.errors import NddrError
from nddr.models.backbones.staged import StagedBackbone


def timm_backbone(
    model_name: str, weights: object = None, **timm_options: object
) -> StagedBackbone:
    """Build ``timm.create_model(model_name, features_only=True)`` and cut it at its feature taps.

    Two kinds of timm feature extractor run their modules in order and can be cut: the generic
    one (``FeatureDictNet``: ResNet, ConvNeXt, RegNet, DenseNet, ...), whose modules are cut after
    each tap of ``feature_info``, and the EfficientNet / MobileNet one (stem, then ``blocks``),
    cut after the blocks ending each ``feature_info`` stage. Models whose features come from hooks
    or getters (ViT, HRNet, Xception, ...) are refused. ``weights`` is a local file of the model's
    weights (timm's ``pretrained_cfg_overlay=dict(file=...)``); nothing is downloaded. Extra
    options (e.g. ``output_stride=8``) go to ``timm.create_model``.
    """
    try:
        import timm
    except ImportError:
        raise NddrError("timm backbones need timm: pip install 'nddr[timm]'") from None
    if model_name not in timm.list_models():
        raise NddrError(f"timm has no model {model_name!r}: see timm.list_models() for the names")
    options = dict(timm_options)
    if weights is not None:
        options.update(pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
    try:
        extractor = _create_extractor(timm, model_name, options)
    except (RuntimeError, FileNotFoundError) as error:
        raise NddrError(f"timm model {model_name!r} could not be built: {error}") from None
    info = extractor.feature_info
    return StagedBackbone(
        _cut_stages(model_name, extractor),
        channels=info.channels(),
        strides=info.reduction(),
        name=f"timm:{model_name}",
        dense_head="aspp",
    )


def _create_extractor(timm: object, model_name: str, options: dict[str, object]) -> nn.Module:
    """``features_only`` model; under a meta default device, parameters on meta but the model's
    own set-up arithmetic on CPU (RegNet computes its widths with ``torch.unique``, which has no
    meta kernel)."""
    if torch.get_default_device().type != "meta":
        return timm.create_model(model_name, features_only=True, **options)
    with torch.device("cpu"):
        try:
            return timm.create_model(model_name, features_only=True, device="meta", **options)
        except TypeError as error:  # a timm without per-model device arguments
            if "device" not in str(error):
                raise
    return timm.create_model(model_name, features_only=True, **options)


def _cut_stages(model_name: str, extractor: nn.Module) -> list[nn.Module]:
    """The extractor's modules in run order, grouped into one ``nn.Sequential`` per feature tap."""
    from timm.models import FeatureDictNet
    from timm.models.efficientnet import EfficientNetFeatures
    from timm.models.mobilenetv3 import MobileNetV3Features

    if isinstance(extractor, FeatureDictNet):
        taps = set(extractor.return_layers)
        pieces = ((module, name in taps) for name, module in extractor.items())
    elif isinstance(extractor, (EfficientNetFeatures, MobileNetV3Features)):
        if extractor.feature_hooks is not None:
            raise NddrError(
                f"timm model {model_name!r} taps features inside its blocks (feature_location); "
                "stages need taps at block ends: leave feature_location at its default"
            )
        pieces = _block_pieces(extractor)
    else:
        raise NddrError(
            f"timm model {model_name!r} gives its features through {type(extractor).__name__}, "
            "not a module sequence that can be cut into stages; pick a timm model whose "
            "features_only extractor runs its modules in order (e.g. resnet*, convnext*, regnet*, "
            "efficientnet*, mobilenetv3*)"
        )
    stages: list[nn.Module] = []
    current: list[nn.Module] = []
    for module, ends_stage in pieces:
        current.append(module)
        if ends_stage:
            stages.append(nn.Sequential(*current))
            current = []
    return stages


def _block_pieces(extractor: nn.Module) -> Iterator[tuple[nn.Module, bool]]:
    """An EfficientNet / MobileNet extractor's modules in the order its forward runs them (stem,
    then each block stage), each with whether a feature is taken after it (feature ``stage`` 0 is
    the stem, ``i + 1`` block stage i)."""
    tapped = {feature["stage"] for feature in extractor.feature_info.get_dicts()}
    stem = [module for name, module in extractor.named_children() if name != "blocks"]
    for index, module in enumerate(stem):
        yield module, index == len(stem) - 1 and 0 in tapped
    for index, block in enumerate(extractor.blocks, start=1):
        yield block, index in tapped
