import pytest
import torch

from nddr.tasks.metrics import (
    AccuracyMetric,
    AgeMetric,
    NormalsMetric,
)


def _normals(*vectors):
    """N=1, 3 x 1 x len(vectors) normal map."""
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, 3, 1, len(vectors))


def test_normals_pool_pixels_over_images_not_per_image_means():
    metric = NormalsMetric()
    # Image 1: three pixels at 0 degrees; image 2: one pixel at 90 degrees.
    metric.update(
        _normals((0, 0, 1), (0, 0, 1), (0, 0, 1)), _normals((0, 0, 1), (0, 0, 1), (0, 0, 1))
    )
    metric.update(_normals((1, 0, 0)), _normals((0, 0, 1)))
    result = metric.compute()
    assert result["mean"].item() == pytest.approx(22.5, abs=1e-3)  # per-image mean would be 45
    assert result["median"].item() == pytest.approx(0.0, abs=1e-3)


def test_age_expected_value_of_a_known_distribution():
    logits = torch.full((2, 100), -1e4)
    logits[0, 20] = logits[0, 30] = 0.0  # p = 1/2 at 20 and 30: expected age 25
    logits[1, 40] = 0.0  # certain 40
    metric = AgeMetric()
    metric.update(logits, torch.tensor([27, 46]))
    result = metric.compute()
    assert result["mean_ae"].item() == pytest.approx((2 + 6) / 2, abs=1e-4)
    assert result["median_ae"].item() == pytest.approx(4.0, abs=1e-4)


def test_accuracy():
    metric = AccuracyMetric()
    metric.update(torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), torch.tensor([1, 1, 1]))
    assert metric.compute()["accuracy"].item() == pytest.approx(200 / 3)
