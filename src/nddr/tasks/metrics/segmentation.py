"""Semantic segmentation: mIoU and pixel accuracy from one confusion matrix over the whole set."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric

from nddr.errors import NddrError


class SegmentationMetric(Metric):
    """Confusion matrix over every valid pixel of the evaluation set (paper §4, NYUv2).

    ``compute`` returns:
        * ``miou``: mean over classes of IoU = TP / (TP + FP + FN), in %. A class absent from both the
          ground truth and the prediction of the whole set has no IoU (0 / 0) and is left out of
          the mean; a class present in either counts, with IoU 0 if never predicted correctly.
        * ``pixel_accuracy``: correct / valid pixels, pooled over the set, in %.
        * ``mean_accuracy``: mean over classes present in the ground truth of per-class recall,
          in %.

    Pixels whose target is ``ignore_index`` are not counted. Predictions must be class indices
    (``N x H x W``) or scores (``N x C x H x W``, arg-maxed) at the target's resolution.
    """

    full_state_update = False
    higher_is_better = True
    units: ClassVar[dict[str, str]] = {"miou": "%", "pixel_accuracy": "%", "mean_accuracy": "%"}

    def __init__(self, num_classes: int, ignore_index: int = 255, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.add_state(
            "confusion",
            torch.zeros(num_classes, num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, prediction: Tensor, target: Tensor) -> None:
        if prediction.dim() == target.dim() + 1:
            prediction = prediction.argmax(dim=1)
        if prediction.shape != target.shape:
            raise NddrError(
                f"segmentation prediction {tuple(prediction.shape)} and target "
                f"{tuple(target.shape)} differ in shape: resize the prediction to the target"
            )
        valid = target != self.ignore_index
        truth = target[valid].long()
        predicted = prediction[valid].long()
        if truth.numel() and (truth.min() < 0 or truth.max() >= self.num_classes):
            raise NddrError(
                f"segmentation target has label {int(truth.max())} outside 0..{self.num_classes - 1} "
                f"and {self.ignore_index} (ignore)"
            )
        index = truth * self.num_classes + predicted.clamp(0, self.num_classes - 1)
        self.confusion += torch.bincount(index, minlength=self.num_classes**2).view(
            self.num_classes, self.num_classes
        )

    def compute(self) -> dict[str, Tensor]:
        confusion = self.confusion.double()
        true_positive = confusion.diag()
        truth_total = confusion.sum(dim=1)
        union = truth_total + confusion.sum(dim=0) - true_positive
        present = union > 0
        iou = true_positive[present] / union[present]
        in_truth = truth_total > 0
        return {
            "miou": 100.0 * iou.mean() if present.any() else confusion.new_tensor(float("nan")),
            "pixel_accuracy": 100.0 * true_positive.sum() / confusion.sum().clamp(min=1),
            "mean_accuracy": 100.0 * (true_positive[in_truth] / truth_total[in_truth]).mean(),
        }

    def class_iou(self) -> Tensor:
        """Per-class IoU in %, NaN for classes absent from both ground truth and prediction."""
        confusion = self.confusion.double()
        true_positive = confusion.diag()
        union = confusion.sum(dim=1) + confusion.sum(dim=0) - true_positive
        return torch.where(union > 0, 100.0 * true_positive / union.clamp(min=1), float("nan"))
