"""Task heads: DeepLab-LargeFOV (VGG), DeepLab-v2 ASPP (ResNet) and an image-level classifier."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from nddr.errors import unknown_choice


@dataclass(frozen=True)
class HeadSpec:
    """What the network builder needs to know of a task: its name and output size.

    Args:
        name: Task name, the key of the network's output dict.
        out_channels: Classes (segmentation, age, gender) or values (3 for normals, 1 for depth).
        dense: A per-pixel task (a DeepLab head) or an image-level one (a classifier).
        kind: ``"lfov"``, ``"aspp"`` or ``"classifier"``; ``None`` takes the backbone's dense head
            for dense tasks and the classifier otherwise.
    """

    name: str
    out_channels: int
    dense: bool = True
    kind: str | None = None


class DeepLabLargeFOV(nn.Module):
    """DeepLab-LargeFOV head as the released NDDR-CNN code builds it.

    fc6 (3x3, dilation 12) and fc7 (1x1), each followed by batch norm, ReLU and element-wise
    dropout, then fc8 (1x1) to the outputs. The released code's slim arg scope gives every
    convolution but fc8 batch norm and ReLU, and its dropout is ``slim.dropout`` (keep 0.5) on
    single activations, not whole channels. fc6 and fc7 keep their biases so that ImageNet VGG-16's
    fully connected layers load into them exactly (see :func:`nddr.models.backbones.vgg16_lfov`); their
    batch norms are PyTorch's until the network builder sets them (``bn_momentum`` / ``bn_eps``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 1024,
        dilation: int = 12,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.fc6 = nn.Conv2d(in_channels, width, 3, padding=dilation, dilation=dilation)
        self.bn6 = nn.BatchNorm2d(width)
        self.fc7 = nn.Conv2d(width, width, 1)
        self.bn7 = nn.BatchNorm2d(width)
        self.fc8 = nn.Conv2d(width, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)

    def final_layers(self) -> list[nn.Module]:
        """The last classifier layer, trained at 10x (weights) / 20x (bias) the base rate."""
        return [self.fc8]

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(self.relu(self.bn6(self.fc6(x))))
        x = self.dropout(self.relu(self.bn7(self.fc7(x))))
        return self.fc8(x)


class ASPP(nn.Module):
    """DeepLab-v2 atrous spatial pyramid pooling: four 3x3 branches (dilation 6/12/18/24), summed."""

    def __init__(
        self, in_channels: int, out_channels: int, dilations: tuple[int, ...] = (6, 12, 18, 24)
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate)
            for rate in dilations
        )
        for branch in self.branches:
            nn.init.normal_(branch.weight, std=0.01)
            nn.init.zeros_(branch.bias)

    def final_layers(self) -> list[nn.Module]:
        """Every branch is a last classifier layer."""
        return list(self.branches)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class Classifier(nn.Module):
    """Image-level head (age, gender, classes): global average pool, dropout, linear."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, out_channels)

    def final_layers(self) -> list[nn.Module]:
        return [self.fc]

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(self.pool(x).flatten(1)))


HEADS: dict[str, type[nn.Module]] = {
    "lfov": DeepLabLargeFOV,
    "aspp": ASPP,
    "classifier": Classifier,
}


def build_head(kind: str, in_channels: int, out_channels: int, **options: object) -> nn.Module:
    """Make a head by kind; ``options`` go to its constructor (e.g. ``width`` for ``lfov``)."""
    if kind not in HEADS:
        raise unknown_choice("head", kind, HEADS)
    return HEADS[kind](in_channels, out_channels, **options)
