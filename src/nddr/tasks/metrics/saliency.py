"""Saliency: max F-measure over thresholds and the two classes' mIoU at 0.5, pooled over the set.

The F-measure is the saliency literature's F_beta with beta^2 = 0.3 (precision weighted more
than recall; Achanta et al., CVPR 2009), as Maninis et al. (ASTMT, CVPR 2019) and Vandenhende et
al. (TPAMI 2021) report it: precision and recall are pooled over every labelled pixel of the
evaluation set at each threshold 0.05, 0.10, ..., 0.95 of the predicted probability, and the
best threshold's F is reported. :class:`torchmetrics.classification.BinaryPrecisionRecallCurve`
keeps the per-threshold confusion matrices (constant memory, summed across DDP processes).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics.classification import BinaryPrecisionRecallCurve

from nddr.data.conventions import IGNORE_INDEX
from nddr.errors import NddrError

BETA_SQUARED = 0.3
"""beta^2 of the F-measure (the saliency literature's choice)."""

THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(1, 20))
"""Probability thresholds of the max F-measure: 0.05, 0.10, ..., 0.95."""

IOU_THRESHOLD = 0.5
"""Threshold of the salient / background masks whose mIoU is reported."""


def f_measure(precision: Tensor, recall: Tensor, beta_squared: float = BETA_SQUARED) -> Tensor:
    """F_beta = (1 + b^2) P R / (b^2 P + R); 0 where precision and recall are both 0 or undefined."""
    score = (1 + beta_squared) * precision * recall / (beta_squared * precision + recall)
    return torch.nan_to_num(score, nan=0.0)


class SaliencyMetric(BinaryPrecisionRecallCurve):
    """``max_f``: the best F_beta over :data:`THRESHOLDS`, in %; ``miou``: the mean of the salient
    and background IoU of the masks thresholded at :data:`IOU_THRESHOLD`, in %.

    Predictions are probabilities in [0, 1] (N x H x W), targets 0 / 1 with
    :data:`~nddr.data.conventions.IGNORE_INDEX` for unlabelled pixels, which are not counted.
    """

    full_state_update = False
    higher_is_better = True
    units: ClassVar[dict[str, str]] = {"max_f": "%", "miou": "%"}

    def __init__(self, **kwargs) -> None:
        super().__init__(
            thresholds=list(THRESHOLDS), ignore_index=IGNORE_INDEX, normalization=None, **kwargs
        )

    def update(self, prediction: Tensor, target: Tensor) -> None:
        """Add a batch of probabilities and 0 / 1 / ignore targets of the same shape."""
        if prediction.shape != target.shape:
            raise NddrError(
                f"saliency prediction {tuple(prediction.shape)} and target {tuple(target.shape)} "
                "differ in shape: resize the prediction to the target"
            )
        super().update(prediction.float(), target.long())

    def compute(self) -> dict[str, Tensor]:
        precision, recall, _ = super().compute()
        scores = f_measure(precision[:-1].double(), recall[:-1].double())
        confusion = self.confmat[THRESHOLDS.index(IOU_THRESHOLD)].double()
        true_negative, false_positive = confusion[0, 0], confusion[0, 1]
        false_negative, true_positive = confusion[1, 0], confusion[1, 1]
        unions = torch.stack(
            [
                true_negative + false_positive + false_negative,
                true_positive + false_positive + false_negative,
            ]
        )
        present = unions > 0
        ious = torch.stack([true_negative, true_positive])[present] / unions[present]
        nan = scores.new_tensor(float("nan"))
        return {
            "max_f": 100.0 * scores.max() if confusion.sum() > 0 else nan,
            "miou": 100.0 * ious.mean() if present.any() else nan,
        }
