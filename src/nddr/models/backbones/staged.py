"""A CNN as an ordered list of stages: the unit that columns are made of (paper §3.5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn


class StagedBackbone(nn.Module):
    """An ordered list of stage modules with known output widths and strides.

    Fusion happens at every stage end (paper §3.5: pool1..pool5 for VGG-16, conv1 and the four
    residual stages for ResNet). A column of a multi-task network is one copy of this module.

    Args:
        stages: The stage modules, applied in order.
        channels: Output width of each stage.
        strides: Output stride of each stage with respect to the input image.
        name: What to call it in summaries.
        dense_head: The head kind for pixel-level tasks on this backbone (``"lfov"`` or ``"aspp"``).
        head_width: Hidden width of that head where it has one (DeepLab-LargeFOV: 1024).
        source_parameters: Parameter count of the network the stages were cut from, classifier
            included (e.g. torchvision's ``vgg16_bn``), for comparing with figures quoted for it.
        head_init: A partial state dict of the ``dense_head`` that the weights come with (VGG-16
            with ImageNet weights: DeepLab-LargeFOV's fc6 and fc7 decimated from its classifier),
            or ``None``. :func:`nddr.build_network` loads it into every such head and then drops
            it, so the network's columns do not carry it.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        channels: Sequence[int],
        strides: Sequence[int],
        name: str = "custom",
        dense_head: str = "lfov",
        head_width: int = 1024,
        source_parameters: int | None = None,
        head_init: Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        if not (len(stages) == len(channels) == len(strides) >= 1):
            raise ValueError(
                f"stages, channels and strides must have one entry per stage, got "
                f"{len(stages)}, {len(channels)} and {len(strides)}"
            )
        self.stages = nn.ModuleList(stages)
        self.channels = tuple(int(c) for c in channels)
        self.strides = tuple(int(s) for s in strides)
        self.name = name
        self.dense_head = dense_head
        self.head_width = head_width
        self.source_parameters = source_parameters
        self.head_init = dict(head_init) if head_init is not None else None

    @classmethod
    def from_modules(
        cls,
        stages: Sequence[nn.Module],
        in_channels: int = 3,
        probe_size: int = 64,
        **kwargs: object,
    ) -> StagedBackbone:
        """Wrap the user's own stage modules, reading widths and strides off one probe forward."""
        stages = list(stages)
        probe = nn.Sequential(*stages)
        was_training = probe.training
        parameter = next(probe.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        x = torch.zeros(1, in_channels, probe_size, probe_size, device=device)
        channels, strides = [], []
        probe.eval()
        try:
            with torch.no_grad():
                for stage in stages:
                    x = stage(x)
                    if x.dim() != 4:
                        raise ValueError(
                            f"stage {len(channels)} returned shape {list(x.shape)}; "
                            "every stage must return an [N, C, H, W] tensor"
                        )
                    channels.append(x.shape[1])
                    strides.append(max(1, round(probe_size / x.shape[-1])))
        finally:
            probe.train(was_training)
        return cls(stages, channels, strides, **kwargs)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def output_stride(self) -> int:
        return self.strides[-1]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Every stage's output, in order."""
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def extra_repr(self) -> str:
        return f"name={self.name!r}, channels={self.channels}, strides={self.strides}"
