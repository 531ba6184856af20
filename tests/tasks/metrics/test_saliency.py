import numpy as np
import pytest
import torch

from nddr.errors import NddrError
from nddr.tasks.metrics import SaliencyMetric
from nddr.tasks.metrics.saliency import BETA_SQUARED, THRESHOLDS


def _numpy_max_f(probability: np.ndarray, truth: np.ndarray) -> float:
    """Max over thresholds of F_beta (beta^2 = 0.3) pooled over labelled pixels, in %."""
    labelled = truth != 255
    probability, positive = probability[labelled], truth[labelled] == 1
    scores = []
    for threshold in np.arange(1, 20) * 0.05:
        predicted = probability >= threshold
        true_positive = np.sum(predicted & positive)
        precision = true_positive / max(predicted.sum(), 1)
        recall = true_positive / max(positive.sum(), 1)
        denominator = BETA_SQUARED * precision + recall
        scores.append(
            0.0 if denominator == 0 else (1 + BETA_SQUARED) * precision * recall / denominator
        )
    return 100.0 * max(scores)


def _numpy_miou(probability: np.ndarray, truth: np.ndarray) -> float:
    """Mean of background and salient IoU of the mask at 0.5 over labelled pixels, in %."""
    labelled = truth != 255
    predicted, positive = probability[labelled] >= 0.5, truth[labelled] == 1
    ious = [
        np.sum(predicted & positive) / np.sum(predicted | positive),
        np.sum(~predicted & ~positive) / np.sum(~predicted | ~positive),
    ]
    return 100.0 * float(np.mean(ious))


def _random_batches(seed: int):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, (3, 2, 9, 11)).astype(np.int64)
    # Predictions correlated with the truth, so that the best threshold is not an extreme one.
    probability = np.clip(0.35 * truth + rng.uniform(0, 0.65, truth.shape), 0, 1).astype(np.float32)
    truth[rng.uniform(size=truth.shape) < 0.2] = 255
    return probability, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_f_and_miou_match_numpy_over_batches(seed):
    probability, truth = _random_batches(seed)
    metric = SaliencyMetric()
    for batch in range(len(truth)):
        metric.update(torch.from_numpy(probability[batch]), torch.from_numpy(truth[batch]))
    result = metric.compute()
    assert float(result["max_f"]) == pytest.approx(_numpy_max_f(probability, truth), rel=1e-6)
    assert float(result["miou"]) == pytest.approx(_numpy_miou(probability, truth), rel=1e-6)
    assert 0.5 in THRESHOLDS and len(THRESHOLDS) == 19


def test_ignored_pixels_change_nothing():
    probability, truth = _random_batches(3)
    labelled = SaliencyMetric()
    labelled.update(torch.from_numpy(probability[0]), torch.from_numpy(truth[0]))
    noisy = probability[0].copy()
    noisy[truth[0] == 255] = 1.0 - noisy[truth[0] == 255]  # what the network says there is moot
    ignored = SaliencyMetric()
    ignored.update(torch.from_numpy(noisy), torch.from_numpy(truth[0]))
    expected = {key: float(value) for key, value in labelled.compute().items()}
    assert {key: float(value) for key, value in ignored.compute().items()} == expected


def test_perfect_prediction_scores_100_and_shapes_must_match():
    truth = torch.tensor([[[0, 1, 1, 255]]])
    metric = SaliencyMetric()
    metric.update(truth.clamp(max=1).float(), truth)
    assert {key: float(value) for key, value in metric.compute().items()} == {
        "max_f": 100.0,
        "miou": 100.0,
    }
    with pytest.raises(NddrError, match="differ in shape"):
        metric.update(torch.zeros(1, 2, 2), torch.zeros(1, 2, 3, dtype=torch.long))


def test_no_labelled_pixel_gives_nan_not_a_score():
    metric = SaliencyMetric()
    metric.update(torch.rand(1, 2, 2), torch.full((1, 2, 2), 255))
    assert all(np.isnan(float(value)) for value in metric.compute().values())
