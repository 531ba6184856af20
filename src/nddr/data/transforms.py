"""Joint transforms: raw NumPy samples -> tensors, with the paper's training augmentation (§4).

Training: a random scale (the paper's 0.5-1.5; image bilinear, dense targets nearest), a random
crop (the paper's 321) padded with the ignore value of each target, and a horizontal flip that
also negates the x component of the normals (the authors' release flips the normal image without
negating x, which makes flipped normals wrong; this fixes it). Each is off unless given; an
experiment gives its ``data`` section's (:func:`nddr.training.build.training_set`). Evaluation:
the whole image.

Tensor conventions after the transform: ``image`` float32 (3, H, W) normalised by ``mean`` /
``std``; segmentation and saliency int64 (H, W); normals float32 (3, H, W); depth float32
(1, H, W); image-level labels int64 scalars, regression values float32 scalars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nddr.data.base import IGNORE_INDEX, RawSample, TargetSpec
from nddr.errors import NddrError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PAD_VALUE = {"segmentation": IGNORE_INDEX, "normals": 0.0, "depth": 0.0, "saliency": IGNORE_INDEX}
"""What crop padding writes into each dense target: the value meaning "no label"."""


def to_tensors(sample: RawSample, targets: Mapping[str, TargetSpec]) -> dict[str, Tensor]:
    """Raw arrays -> tensors in channel-first layout, image scaled to [0, 1]."""
    out = {"image": torch.from_numpy(np.array(sample["image"])).permute(2, 0, 1).float() / 255}
    for name, spec in targets.items():
        value = sample[name]
        if spec.kind in ("segmentation", "saliency"):
            out[name] = torch.from_numpy(np.array(value)).long()
        elif spec.kind == "normals":
            out[name] = torch.from_numpy(np.array(value)).permute(2, 0, 1).float()
        elif spec.kind == "depth":
            out[name] = torch.from_numpy(np.array(value))[None].float()
        elif spec.kind == "regression":
            out[name] = torch.tensor(float(value), dtype=torch.float32)
        else:
            out[name] = torch.tensor(int(value), dtype=torch.long)
    return out


def _resize_dense(value: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    batched = value[None] if value.dim() == 3 else value[None, None]
    dtype = batched.dtype
    if mode == "nearest":
        resized = F.interpolate(batched.float(), size=size, mode="nearest-exact")
    else:
        resized = F.interpolate(
            batched, size=size, mode="bilinear", align_corners=False, antialias=True
        )
    resized = resized.to(dtype)
    return resized[0] if value.dim() == 3 else resized[0, 0]


class JointTransform:
    """Apply the same geometric augmentation to the image and every dense target.

    Args:
        targets: The dataset's targets (which keys are dense, and of which kind).
        train: Augment (scale, crop, flip, as given) or not.
        crop_size: Training crop (height, width) or one int; ``None`` keeps the scaled image.
        scale_range: Random scale factor range; ``None`` or ``(1, 1)`` for none.
        flip: Random horizontal flip (normals' x negated). Off for tasks where left and right
            matter (MultiDigits).
        mean, std: Image normalisation after scaling to [0, 1].
    """

    def __init__(
        self,
        targets: Mapping[str, TargetSpec],
        *,
        train: bool,
        crop_size: int | Sequence[int] | None = None,
        scale_range: tuple[float, float] | None = None,
        flip: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        generator: torch.Generator | None = None,
    ) -> None:
        self.targets = dict(targets)
        self.train = train
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        if scale_range is not None and not 0 < scale_range[0] <= scale_range[1]:
            raise NddrError(f"scale range {scale_range} must be 0 < low <= high")
        self.scale_range = scale_range
        self.flip = flip
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.generator = generator

    def _uniform(self, generator: torch.Generator | None) -> float:
        return torch.rand((), generator=generator).item()

    def __call__(
        self, sample: RawSample, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Transform one sample; ``generator`` (else the one given at construction, else torch's
        global one) draws the augmentation, so a seeded generator makes it reproducible."""
        generator = generator or self.generator
        out = to_tensors(sample, self.targets)
        out["image"] = (out["image"] - self.mean) / self.std
        if not self.train:
            return out
        dense = [name for name, spec in self.targets.items() if spec.dense]
        if self.scale_range is not None and self.scale_range != (1.0, 1.0):
            low, high = self.scale_range
            scale = low + (high - low) * self._uniform(generator)
            height, width = out["image"].shape[-2:]
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            out["image"] = _resize_dense(out["image"], size, "bilinear")
            for name in dense:
                out[name] = _resize_dense(out[name], size, "nearest")
        if self.crop_size is not None:
            self._crop(out, dense, generator)
        if self.flip and self._uniform(generator) < 0.5:
            out["image"] = out["image"].flip(-1)
            for name in dense:
                out[name] = out[name].flip(-1)
                if self.targets[name].kind == "normals":
                    out[name][0].neg_()
        return out

    def _crop(
        self, out: dict[str, Tensor], dense: list[str], generator: torch.Generator | None
    ) -> None:
        crop_height, crop_width = self.crop_size
        height, width = out["image"].shape[-2:]
        pad_bottom, pad_right = max(crop_height - height, 0), max(crop_width - width, 0)
        if pad_bottom or pad_right:
            padding = (0, pad_right, 0, pad_bottom)
            out["image"] = F.pad(out["image"], padding, value=0.0)
            for name in dense:
                value = out[name]
                fill = PAD_VALUE[self.targets[name].kind]
                out[name] = F.pad(value, padding, value=fill)
            height, width = out["image"].shape[-2:]
        top = math.floor(self._uniform(generator) * (height - crop_height + 1))
        left = math.floor(self._uniform(generator) * (width - crop_width + 1))
        for name in ["image", *dense]:
            out[name] = out[name][..., top : top + crop_height, left : left + crop_width]
