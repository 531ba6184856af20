import math

import numpy as np
import pytest
import torch

from nddr.errors import NddrError
from nddr.tasks.metrics import (
    GAIN_CONVENTIONS,
    UNITS,
    AccuracyMetric,
    AgeMetric,
    DepthMetric,
    NormalsMetric,
    SegmentationMetric,
    angle_error,
    decode_normals,
    encode_normals,
    multi_task_gain,
)
from nddr.training.evaluate import format_results


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


def _normals(*vectors):
    """N=1, 3 x 1 x len(vectors) normal map."""
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, 3, 1, len(vectors))


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


def test_normals_median_is_exact_on_random_angles():
    torch.manual_seed(1)
    prediction, target = torch.randn(2, 3, 5, 7), torch.randn(2, 3, 5, 7)
    metric = NormalsMetric()
    metric.update(prediction[:1], target[:1])
    metric.update(prediction[1:], target[1:])
    angles = angle_error(prediction, target).numpy()
    assert angles.size % 2 == 0  # the even case: mean of the two middle values, as numpy
    assert metric.compute()["median"].item() == pytest.approx(float(np.median(angles)), rel=1e-6)


def test_depth_hand_worked():
    prediction = torch.tensor([1.0, 2.0, 4.0, 9.0]).view(1, 1, 1, 4)
    target = torch.tensor([1.0, 1.0, 2.0, 0.0]).view(1, 1, 1, 4)
    metric = DepthMetric()
    metric.update(prediction, target)
    result = metric.compute()
    assert result["abs_error"].item() == pytest.approx(1.0)
    assert result["rel_error"].item() == pytest.approx(2 / 3)
    assert result["rmse"].item() == pytest.approx(math.sqrt(5 / 3))
    assert result["delta_1.25"].item() == pytest.approx(100 / 3)


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


@pytest.mark.parametrize("convention", GAIN_CONVENTIONS)
def test_multi_task_gain_signs_by_direction(convention):
    directions = {"seg": {"miou": True}, "normals": {"mean": False}}
    single = {"seg": {"miou": 0.4}, "normals": {"mean": 25.0}}
    # +25% mIoU and 20% lower angle error: both gains.
    assert multi_task_gain(
        {"seg": {"miou": 0.5}, "normals": {"mean": 20.0}}, single, directions, convention=convention
    ) == pytest.approx(22.5)
    assert multi_task_gain(single, single, directions, convention=convention) == 0
    with pytest.raises(NddrError, match="normals/mean"):
        multi_task_gain({"seg": {"miou": 0.5}}, single, directions, convention=convention)


def test_multi_task_gain_conventions_weigh_metrics_or_tasks():
    # Task A has two metrics: +10% and +30% (mean +20%); task B one: -10%.
    directions = {"a": {"x": True, "y": False}, "b": {"z": True}}
    single = {"a": {"x": 10.0, "y": 10.0}, "b": {"z": 10.0}}
    multi = {"a": {"x": 11.0, "y": 7.0}, "b": {"z": 9.0}}
    # Every metric once: (10 + 30 - 10) / 3; every task once: (20 - 10) / 2.
    gains = {
        convention: multi_task_gain(multi, single, directions, convention=convention)
        for convention in ("per_metric", "per_task")
    }
    assert gains == pytest.approx({"per_metric": 10.0, "per_task": 5.0})
    assert "Navon" in GAIN_CONVENTIONS["per_metric"]
    assert "Maninis" in GAIN_CONVENTIONS["per_task"]
    with pytest.raises(NddrError, match="unknown Delta_m convention 'per_tsk': did you mean"):
        multi_task_gain(multi, single, directions, convention="per_tsk")


def test_encoded_metrics_print_on_their_own_line():
    results = {"normals": {"mean": 30.5, "encoded_mean": 12.25, "encoded_within_30": 90.0}}
    table = format_results(results).splitlines()
    assert table[0].split() == ["normals", "mean", "30.5°"]
    assert table[1].split() == ["encoded_mean", "12.25°", "encoded_within_30", "90%"]
    assert table[1].startswith(" " * 15)


def _distributed_worker(rank: int, world_size: int, folder: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{folder}/init", rank=rank, world_size=world_size
    )
    prediction, target, segmentation, labels = _shards()
    normals, classes = NormalsMetric(), SegmentationMetric(4)
    # Uneven shards: rank 0 gets one image, rank 1 two.
    part = slice(0, 1) if rank == 0 else slice(1, 3)
    normals.update(prediction[part], target[part])
    classes.update(segmentation[part], labels[part])
    result = {**normals.compute(), **classes.compute()}
    torch.save({key: value.item() for key, value in result.items()}, f"{folder}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _shards():
    generator = torch.Generator().manual_seed(3)
    prediction = torch.randn(3, 3, 4, 5, generator=generator)
    target = torch.randn(3, 3, 4, 5, generator=generator)
    target[:, :, 0] = 0  # invalid pixels
    segmentation = torch.randint(0, 4, (3, 4, 5), generator=generator)
    labels = torch.randint(0, 4, (3, 4, 5), generator=generator)
    return prediction, target, segmentation, labels


def test_metrics_reduce_across_processes(tmp_path):
    """Under DDP every rank computes the metric of the whole set (sums and exact median)."""
    torch.multiprocessing.spawn(_distributed_worker, args=(2, str(tmp_path)), nprocs=2)
    prediction, target, segmentation, labels = _shards()
    normals, classes = NormalsMetric(), SegmentationMetric(4)
    normals.update(prediction, target)
    classes.update(segmentation, labels)
    expected = {
        key: value.item() for key, value in {**normals.compute(), **classes.compute()}.items()
    }
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert result == pytest.approx(expected, rel=1e-6)


def test_every_ratio_is_in_percent_and_printed_with_its_unit():
    segmentation = SegmentationMetric(2)
    segmentation.update(torch.tensor([[0, 1, 1, 1]]), torch.tensor([[0, 1, 0, 1]]))
    accuracy = AccuracyMetric()
    accuracy.update(torch.tensor([1, 0]), torch.tensor([1, 1]))
    results = {
        "seg": {k: float(v) for k, v in segmentation.compute().items()},
        "digit": {k: float(v) for k, v in accuracy.compute().items()},
        "normals": {"mean": 30.5, "within_11.25": 12.0},
    }
    assert results["seg"]["pixel_accuracy"] == results["digit"]["accuracy"] * 1.5 == 75.0
    table = format_results(results).splitlines()
    assert table[0].split() == [
        "seg",
        "miou",
        "58.33%",
        "pixel_accuracy",
        "75%",
        "mean_accuracy",
        "75%",
    ]
    assert table[1].split() == ["digit", "accuracy", "50%"]
    assert table[2].split() == ["normals", "mean", "30.5°", "within_11.25", "12%"]
    assert {key for key, unit in UNITS.items() if unit == "%"} >= {
        "miou",
        "pixel_accuracy",
        "mean_accuracy",
        "accuracy",
        "within_30",
        "delta_1.25",
    }
