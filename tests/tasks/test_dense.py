from pathlib import PurePosixPath

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nddr.data.base import TargetSpec
from nddr.tasks import Saliency, build_task, total_loss


def test_saliency_loss_is_bce_over_labelled_pixels_at_the_labels_size():
    task = build_task("saliency", TargetSpec("saliency"))
    assert isinstance(task, Saliency) and task.out_channels == 1 and task.dense
    generator = torch.Generator().manual_seed(0)
    output = torch.randn(2, 1, 4, 4, generator=generator)
    target = torch.randint(0, 2, (2, 8, 8), generator=generator)
    target[:, :3] = 255
    logits = F.interpolate(output, size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    labelled = target != 255
    expected = F.binary_cross_entropy_with_logits(logits[labelled], target[labelled].float())
    assert task.loss(output, target).item() == pytest.approx(expected.item())


def test_saliency_batch_without_labels_adds_no_loss_and_no_nan():
    task, depth = Saliency("saliency"), build_task("depth", TargetSpec("depth"))
    outputs = {
        "saliency": torch.randn(2, 1, 4, 4, requires_grad=True),
        "depth": torch.randn(2, 1, 4, 4, requires_grad=True),
    }
    batch = {"saliency": torch.full((2, 4, 4), 255), "depth": torch.rand(2, 1, 4, 4) + 0.5}
    total, losses = total_loss([task, depth], outputs, batch)
    assert losses["saliency"].item() == 0.0
    assert total.item() == pytest.approx(losses["depth"].item())
    total.backward()
    grad = outputs["saliency"].grad
    assert grad is not None and torch.isfinite(grad).all() and not grad.any()


def test_saliency_predicts_probabilities_and_saves_them(tmp_path):
    task = Saliency("saliency")
    output = torch.tensor([[[[-20.0, 0.0], [20.0, 1.0]]]])
    prediction = task.predict(output, (2, 2))
    torch.testing.assert_close(prediction, torch.sigmoid(output[:, 0]))
    metric = task.metric()
    task.update_metric(metric, output, torch.tensor([[[0, 255], [1, 1]]]))
    assert float(metric.compute()["max_f"]) == pytest.approx(100.0)
    entry = task.save_prediction(output, prediction[0], tmp_path, PurePosixPath("x"))
    assert entry == "x_saliency.png"
    saved = np.load(tmp_path / "x_saliency.npy")
    assert saved.dtype == np.float32 and saved.shape == (2, 2)
    np.testing.assert_allclose(saved, prediction[0].numpy())
    picture = task.picture(np.array([[0, 1], [255, 1]], dtype=np.uint8))
    assert picture.shape == (2, 2, 3) and picture[0, 1].tolist() == [255, 255, 255]
    assert picture[0, 0].tolist() == [0, 0, 0] and picture[1, 0].tolist() != [0, 0, 0]


def test_segmentation_batch_without_labels_adds_no_loss_and_no_nan():
    task = build_task("parts", TargetSpec("segmentation", 7))
    output = torch.randn(2, 7, 4, 4, requires_grad=True)
    loss = task.loss(output, torch.full((2, 4, 4), 255))
    loss.backward()
    assert loss.item() == 0.0 and output.grad is not None and not output.grad.any()
