import pytest
import torch

from nddr.tasks.metrics import (
    UNITS,
    AccuracyMetric,
    NormalsMetric,
    SegmentationMetric,
)
from nddr.training.evaluate import format_results


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
