import math

import numpy as np
import pytest
import torch

from nddr.tasks.metrics import (
    UNITS,
    NormalsMetric,
    angle_error,
    decode_normals,
    encode_normals,
)
from tests.tasks.metrics.test_classification import _normals


def test_normals_angles_at_0_90_180_degrees():
    target = _normals((0, 0, 1), (0, 0, 1), (0, 0, 1), (0, 0, 1), (0, 0, 0))
    prediction = _normals((0, 0, 5), (1, 0, 0), (0, 0, -1), (0, 0, 2), (1, 0, 0))
    angles = angle_error(prediction, target)
    assert angles.tolist() == pytest.approx([0, 90, 180, 0], abs=1e-3)
    metric = NormalsMetric()
    metric.update(prediction, target)
    result = metric.compute()
    assert result["mean"].item() == pytest.approx(67.5, abs=1e-3)
    assert result["median"].item() == pytest.approx(45.0, abs=1e-3)  # (0 + 90) / 2
    assert result["within_11.25"].item() == pytest.approx(50.0)
    assert result["within_22.5"].item() == pytest.approx(50.0)
    assert result["within_30"].item() == pytest.approx(50.0)


def _degrees(a, b):
    """The angle between two 3-vectors, written out."""
    dot = sum(x * y for x, y in zip(a, b))
    return math.degrees(math.acos(dot / math.hypot(*a) / math.hypot(*b)))


def test_encoded_angles_are_the_released_codes_on_hand_worked_vectors():
    target = _normals((0, 0, 1), (0, 0, 1), (0, 0, 0))
    prediction = _normals((1, 0, 0), (0, 0, 3), (1, 0, 0))  # the last pixel is invalid
    metric = NormalsMetric()
    metric.update(prediction, target)
    result = {key: value.item() for key, value in metric.compute().items()}
    # The target as a PNG stores it, (128, 128, 255) (rounded 127.5 (n + 1)); the predictions
    # encoded, unrounded: (255, 127.5, 127.5) and (127.5, 127.5, 255).
    crossed = _degrees((255, 127.5, 127.5), (128, 128, 255))
    quantised = _degrees((127.5, 127.5, 255), (128, 128, 255))
    assert crossed == pytest.approx(33.467, abs=1e-3)  # unrounded: acos(5 / 6) = 33.557
    assert _degrees((255, 127.5, 127.5), (127.5, 127.5, 255)) == pytest.approx(33.557, abs=1e-3)
    assert quantised == pytest.approx(0.106, abs=1e-3)  # the PNG's rounding, nothing else
    assert result["mean"] == pytest.approx(45.0, abs=1e-4)  # true angles 90 and 0
    assert result["encoded_mean"] == pytest.approx((crossed + quantised) / 2, abs=1e-4)
    assert result["encoded_median"] == pytest.approx((crossed + quantised) / 2, abs=1e-4)
    assert result["encoded_within_11.25"] == result["encoded_within_22.5"] == 50.0
    assert result["encoded_within_30"] == result["within_30"] == 50.0
    assert metric.count.item() == 2
    assert all(UNITS[f"encoded_{key}"] == UNITS[key] for key in ("mean", "within_30"))


def test_encoded_prediction_is_measured_as_is():
    target = _normals((0, 0, 1), (1, 0, 0), (0, 1, 0))
    # A network predicting in the encoded space: the stored value itself, then two others.
    raw = _normals((128, 128, 255), (1, 0, 0), (0.5, 3, 0.5))
    metric = NormalsMetric()
    metric.update(decode_normals(raw), target, encoded_prediction=raw)
    result = {key: value.item() for key, value in metric.compute().items()}
    encoded = [0.0, _degrees((1, 0, 0), (255, 128, 128)), _degrees((0.5, 3, 0.5), (128, 255, 128))]
    assert result["encoded_mean"] == pytest.approx(sum(encoded) / 3, abs=1e-4)
    assert result["encoded_median"] == pytest.approx(sorted(encoded)[1], abs=1e-4)
    # The stored value decodes to its unit normal, up to the PNG's rounding.
    assert angle_error(decode_normals(raw), target)[0].item() < 0.5
    assert result["encoded_within_11.25"] == pytest.approx(100 / 3)


def test_identical_normals_are_0_degrees_in_both_spaces():
    normals = torch.nn.functional.normalize(
        torch.randn(1, 3, 4, 5, generator=torch.Generator().manual_seed(2)), dim=1
    )
    metric = NormalsMetric()
    metric.update(normals, normals, encoded_prediction=encode_normals(normals, rounded=True))
    result = metric.compute()
    assert result["mean"].item() == pytest.approx(0.0, abs=1e-3)
    assert result["encoded_mean"].item() == pytest.approx(0.0, abs=1e-3)
    assert result["encoded_within_11.25"].item() == result["within_11.25"].item() == 100.0


def test_encode_and_decode_normals():
    normals = _normals((0, 0, 1), (1, 0, 0), (0.6, -0.8, 0), (0, 0, 0))
    encoded = encode_normals(normals)
    assert encoded[0, :, 0, 0].tolist() == [127.5, 127.5, 255.0]
    assert encode_normals(normals, rounded=True)[0, :, 0, 0].tolist() == [128.0, 128.0, 255.0]
    assert encoded[0, :, 0, 3].tolist() == [0.0, 0.0, 0.0]  # invalid stays invalid
    # Any length of the encoded direction decodes to the same unit normal.
    torch.testing.assert_close(decode_normals(encoded * 0.01), normals, atol=1e-6, rtol=0)
    # The other normal on the ray of (0, 0, 1) decodes to (0, 0, 1): a direction is ambiguous.
    other = _normals((-2 / 3, -2 / 3, -1 / 3))
    torch.testing.assert_close(decode_normals(encode_normals(other)), _normals((0, 0, 1)))
    # A ray that misses the sphere gives the sphere point closest to it.
    missing = decode_normals(_normals((1, 0, 0), (-1, -1, -1)))
    torch.testing.assert_close(missing[0, :, 0, 0], torch.tensor([0.0, -1.0, -1.0]) / math.sqrt(2))
    torch.testing.assert_close(missing[0, :, 0, 1], torch.full((3,), -1 / math.sqrt(3)))


def test_decode_inverts_encode_on_the_far_side():
    normals = torch.nn.functional.normalize(
        torch.randn(1, 3, 50, 40, generator=torch.Generator().manual_seed(0)), dim=1
    )
    far = (normals.sum(dim=1) >= -1).flatten()  # n . (1, 1, 1) >= -1: the ray's far crossing
    error = angle_error(decode_normals(encode_normals(normals)), normals)
    assert 0.7 < far.float().mean() < 0.9
    assert error[far].max() < 0.05 and error[~far].min() > 0.05


def test_normals_median_is_exact_on_random_angles():
    torch.manual_seed(1)
    prediction, target = torch.randn(2, 3, 5, 7), torch.randn(2, 3, 5, 7)
    metric = NormalsMetric()
    metric.update(prediction[:1], target[:1])
    metric.update(prediction[1:], target[1:])
    angles = angle_error(prediction, target).numpy()
    assert angles.size % 2 == 0  # the even case: mean of the two middle values, as numpy
    assert metric.compute()["median"].item() == pytest.approx(float(np.median(angles)), rel=1e-6)
