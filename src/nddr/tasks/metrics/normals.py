"""Surface normals: angle error pooled over all valid pixels of the whole set (paper §4).

Two spaces are measured. The *true* angles are between unit normals. The *encoded* angles are
the released code's: its loss and metric L2-normalise the raw 8-bit ground truth of the NYUv2
normal PNGs, e = (n + 1) / 2 * 255, without decoding it, so they are angles between encoded
vectors, much smaller than the true ones (33.6 against 90 degrees for (0, 0, 1) and (1, 0, 0)).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from nddr.data.conventions import ENCODED_PREFIX, ENCODING_SCALE
from nddr.errors import NddrError

THRESHOLDS = (11.25, 22.5, 30.0)


def valid_normals(target: Tensor) -> Tensor:
    """Mask (N x H x W) of pixels with a ground-truth normal; (0, 0, 0) marks invalid ones."""
    return target.abs().sum(dim=1) > 0


def encode_normals(normals: Tensor, *, rounded: bool = False) -> Tensor:
    """Directions (N x 3 x H x W, L2-normalised first) as 8-bit encoded vectors 127.5 (n + 1).

    (0, 0, 0) stays (0, 0, 0): invalid or without a direction. ``rounded`` rounds to integers as
    the PNGs store them (for the ground truth): nddr L2-normalises decoded PNG values, and this
    gives the file's value back wherever that moved it by less than half a step (98% of the
    pixels of a PNG of rounded random unit normals; the others are one step off).
    """
    unit = F.normalize(normals.float(), dim=1)
    encoded = (unit + 1.0) * ENCODING_SCALE
    if rounded:
        encoded = encoded.round()
    return torch.where(valid_normals(normals).unsqueeze(1), encoded, 0.0)


def decode_normals(encoded: Tensor) -> Tensor:
    """Unit normals (N x 3 x H x W) from directions in the encoded space.

    A direction u alone is ambiguous: the ray t u meets the sphere of encoded unit normals
    |t u / 127.5 - 1| = 1 twice, at s = t / 127.5 = u.1 +- sqrt((u.1)^2 - 2). This takes one
    choice, the farther point (the (1, 1, 1) side), which inverts :func:`encode_normals` for
    every unit normal with n_x + n_y + n_z >= -1 (79% of the sphere); where the ray misses the
    sphere (u.1 < sqrt 2) it takes the sphere point closest to the ray (s = max(u.1, 0)).
    (0, 0, 0) stays (0, 0, 0).
    """
    direction = F.normalize(encoded.float(), dim=1)
    along = direction.sum(dim=1, keepdim=True)
    hits = along >= math.sqrt(2.0)
    farther = along + (along.square() - 2.0).clamp(min=0.0).sqrt()
    scale = torch.where(hits, farther, along.clamp(min=0.0))
    normals = F.normalize(scale * direction - 1.0, dim=1)
    return torch.where(valid_normals(encoded).unsqueeze(1), normals, 0.0)


def angle_error(prediction: Tensor, target: Tensor) -> Tensor:
    """Angles in degrees between the L2-normalised prediction and target at the valid pixels.

    Both are ``N x 3 x H x W``; the result is a flat tensor over valid pixels.
    """
    if prediction.shape != target.shape or prediction.dim() != 4 or prediction.shape[1] != 3:
        raise NddrError(
            f"normals prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must "
            "both be N x 3 x H x W"
        )
    valid = valid_normals(target)
    predicted = F.normalize(prediction.float(), dim=1).movedim(1, -1)[valid]
    truth = F.normalize(target.float(), dim=1).movedim(1, -1)[valid]
    # atan2(|p x t|, p . t) is exact near 0 and 180 degrees, where float32 acos is off by
    # up to ~0.03 degrees (identical normals would not give 0).
    sine = torch.linalg.cross(predicted, truth, dim=-1).norm(dim=-1)
    angles = torch.atan2(sine, (predicted * truth).sum(dim=-1))
    # A zero prediction has no direction: 90 degrees from every normal (NaN stays NaN).
    angles = torch.where(predicted.abs().sum(dim=-1) == 0, math.pi / 2, angles)
    return torch.rad2deg(angles)


_SUMMARY_UNITS = {"mean": "°", "median": "°"} | {f"within_{limit:g}": "%" for limit in THRESHOLDS}


class NormalsMetric(Metric):
    """Mean and median angle error and % of pixels within 11.25, 22.5 and 30 degrees, true and
    encoded (keys ``encoded_*``: the released code's angles between 8-bit encoded vectors).

    All pooled over every valid pixel of the evaluation set (not averaged per image); "within"
    counts angles below the threshold (the released code: at most; they differ only at exactly
    the threshold). The medians are exact: the angles are kept (float32, 8 bytes per valid pixel
    for both spaces: ~1.4 GB for NYUv2's 654 test images at full resolution) and gathered
    across processes under DDP.
    """

    full_state_update = False
    higher_is_better = False
    units: ClassVar[dict[str, str]] = {
        **_SUMMARY_UNITS,
        **{ENCODED_PREFIX + key: unit for key, unit in _SUMMARY_UNITS.items()},
    }

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("angles", [], dist_reduce_fx="cat")
        self.add_state("encoded_angles", [], dist_reduce_fx="cat")
        for name in ("angle_sum", "encoded_angle_sum"):
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("within", "encoded_within"):
            self.add_state(
                name, torch.zeros(len(THRESHOLDS), dtype=torch.long), dist_reduce_fx="sum"
            )
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self, prediction: Tensor, target: Tensor, encoded_prediction: Tensor | None = None
    ) -> None:
        """Add a batch: ``prediction`` normals (any length) and unit ``target`` normals, both
        N x 3 x H x W, (0, 0, 0) = invalid target. ``encoded_prediction``, the raw output of a
        network that predicts in the encoded space, is measured as is (as the released code
        does); without it the encoded angles are those of ``encode_normals(prediction)``."""
        if encoded_prediction is None:
            encoded_prediction = encode_normals(prediction)
        angles = angle_error(prediction, target)
        encoded = angle_error(encoded_prediction, encode_normals(target, rounded=True))
        self.angles.append(angles)
        self.encoded_angles.append(encoded)
        self.angle_sum += angles.double().sum()
        self.encoded_angle_sum += encoded.double().sum()
        self.within += _within(angles)
        self.encoded_within += _within(encoded)
        self.count += angles.numel()

    def compute(self) -> dict[str, Tensor]:
        return {
            **_summary(self.angles, self.angle_sum, self.within, self.count, ""),
            **_summary(
                self.encoded_angles,
                self.encoded_angle_sum,
                self.encoded_within,
                self.count,
                ENCODED_PREFIX,
            ),
        }


def _within(angles: Tensor) -> Tensor:
    """How many angles are below each threshold."""
    return torch.stack([(angles < limit).sum() for limit in THRESHOLDS])


def _summary(
    kept: list[Tensor] | Tensor, total: Tensor, within: Tensor, count: Tensor, prefix: str
) -> dict[str, Tensor]:
    """Mean, exact median and % within each threshold of the angles of one space."""
    empty = isinstance(kept, list) and not kept
    angles = total.new_zeros(0) if empty else dim_zero_cat(kept)
    count = count.clamp(min=1)
    result = {f"{prefix}mean": total / count, f"{prefix}median": _exact_median(angles)}
    for limit, below in zip(THRESHOLDS, within):
        result[f"{prefix}within_{limit:g}"] = 100.0 * below.double() / count
    return result


def _exact_median(values: Tensor) -> Tensor:
    """The median as numpy defines it (mean of the two middle values for an even count)."""
    if values.numel() == 0:
        return values.new_tensor(math.nan, dtype=torch.float64)
    ordered = values.double().sort().values
    middle = ordered.numel() // 2
    if ordered.numel() % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
