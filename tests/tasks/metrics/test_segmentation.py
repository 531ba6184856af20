import math

import pytest
import torch

from nddr.errors import NddrError
from nddr.tasks.metrics import (
    SegmentationMetric,
)


def test_segmentation_hand_worked_confusion_matrix():
    # Pixels (truth, prediction): (0,0) (0,1) (1,1) (1,1) (2,0) and one ignored.
    target = torch.tensor([[0, 0, 1, 1, 2, 255]])
    prediction = torch.tensor([[0, 1, 1, 1, 0, 2]])
    metric = SegmentationMetric(num_classes=4)
    metric.update(prediction, target)
    result = metric.compute()
    # IoU0 = 1/3, IoU1 = 2/3, IoU2 = 0/1; class 3 is absent from truth and prediction: left out.
    # Every ratio is in %, as the paper reports it.
    assert result["miou"].item() == pytest.approx(100 * (1 / 3 + 2 / 3 + 0) / 3)
    assert result["pixel_accuracy"].item() == pytest.approx(60.0)
    assert result["mean_accuracy"].item() == pytest.approx(100 * (1 / 2 + 1 + 0) / 3)
    iou = metric.class_iou()
    assert math.isnan(iou[3]) and iou[2] == 0 and iou[1].item() == pytest.approx(200 / 3)


def test_segmentation_class_only_predicted_counts_with_zero_iou():
    metric = SegmentationMetric(num_classes=3)
    metric.update(torch.tensor([[0, 0]]), torch.tensor([[0, 1]]))
    # IoU0 = 1/2, IoU1 = 0 (in truth, never predicted); class 2 absent from both.
    assert metric.compute()["miou"].item() == pytest.approx(25.0)


def test_segmentation_accumulates_one_matrix_over_batches():
    torch.manual_seed(0)
    target = torch.randint(0, 5, (4, 7, 9))
    target[:, 0] = 255
    prediction = torch.randint(0, 5, (4, 7, 9))
    whole, batched = SegmentationMetric(5), SegmentationMetric(5)
    whole.update(prediction, target)
    for index in range(4):
        batched.update(prediction[index : index + 1], target[index : index + 1])
    assert torch.equal(whole.confusion, batched.confusion)
    assert whole.confusion.sum() == 4 * 6 * 9


def test_segmentation_takes_scores_and_rejects_bad_labels():
    scores = torch.zeros(1, 3, 2, 2)
    scores[:, 2] = 1
    metric = SegmentationMetric(3)
    metric.update(scores, torch.full((1, 2, 2), 2))
    assert metric.compute()["pixel_accuracy"] == 100
    with pytest.raises(NddrError, match=r"label 7 outside 0\.\.2"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7))
    with pytest.raises(NddrError, match="differ in shape"):
        metric.update(
            torch.zeros(1, 3, 3, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long)
        )
