"""AlexNet (paper's supplementary Table S1), cut from torchvision's alexnet."""

from __future__ import annotations

from nddr.models.backbones.staged import StagedBackbone
from nddr.models.backbones.weights import load_torchvision_weights


def alexnet(weights: object = None) -> StagedBackbone:
    """AlexNet's convolutional part with stage ends at pool1, pool2 and pool5 (widths 64/192/256).

    Its max pools are unpadded (the convs are padded), so the strides 8/16/32 are nominal (227 px ->
    27, 13, 6).

    ``weights``: torchvision ``alexnet`` weights (a file or ``AlexNet_Weights.IMAGENET1K_V1``).
    """
    from torchvision.models import alexnet as builder

    source = builder()
    load_torchvision_weights(source, weights, example="AlexNet_Weights.IMAGENET1K_V1")
    features = source.features
    return StagedBackbone(
        [features[0:3], features[3:6], features[6:13]],
        channels=(64, 192, 256),
        strides=(8, 16, 32),
        name="alexnet",
        dense_head="lfov",
        head_width=1024,
        source_parameters=sum(p.numel() for p in source.parameters()),
    )
