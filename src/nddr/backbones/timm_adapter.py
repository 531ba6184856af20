"""Any timm model as a staged backbone, with stage ends from its ``feature_info``."""

from __future__ import annotations

from torch import nn

from nddr.backbones.staged import StagedBackbone
from nddr.errors import NddrError


def timm_backbone(
    model_name: str, weights: object = None, **timm_options: object
) -> StagedBackbone:
    """Build ``timm.create_model(model_name, features_only=True)`` and cut it at its feature taps.

    timm's feature extractor holds the model's modules in the order they run; each stage here is
    the run of modules up to and including the next tap of ``feature_info``. ``weights`` is a local
    file of the model's weights (timm's ``pretrained_cfg_overlay=dict(file=...)``); nothing is
    downloaded. Extra options (e.g. ``output_stride=8``) go to ``timm.create_model``.
    """
    try:
        import timm
        from timm.models import FeatureDictNet
    except ImportError:
        raise NddrError("timm backbones need timm: pip install 'nddr[timm]'") from None
    if model_name not in timm.list_models():
        raise NddrError(f"timm has no model {model_name!r}: see timm.list_models() for the names")
    options = dict(timm_options)
    if weights is not None:
        options.update(pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
    try:
        extractor = timm.create_model(model_name, features_only=True, **options)
    except (RuntimeError, FileNotFoundError) as error:
        raise NddrError(f"timm model {model_name!r} could not be built: {error}") from None
    if not isinstance(extractor, FeatureDictNet):
        raise NddrError(
            f"timm model {model_name!r} exposes features through hooks or getters, not as a module "
            "sequence; pick a CNN such as resnet*, convnext*, efficientnet* or regnet*"
        )
    taps = set(extractor.return_layers)
    stages: list[nn.Module] = []
    current: list[nn.Module] = []
    for name, module in extractor.items():
        current.append(module)
        if name in taps:
            stages.append(nn.Sequential(*current))
            current = []
    info = extractor.feature_info
    return StagedBackbone(
        stages,
        channels=info.channels(),
        strides=info.reduction(),
        name=f"timm:{model_name}",
        dense_head="aspp",
    )
