import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nddr.data.base import TargetSpec
from nddr.errors import NddrError
from nddr.tasks import (
    TASKS,
    Age,
    Classification,
    Depth,
    Segmentation,
    SurfaceNormals,
    build_tasks,
    total_loss,
)


def test_build_tasks_from_dataset_targets():
    targets = {
        "semseg": TargetSpec("segmentation", 40),
        "normals": TargetSpec("normals"),
        "depth": TargetSpec("depth"),
        "age": TargetSpec("age", 100),
        "gender": TargetSpec("classification", 2),
    }
    tasks = build_tasks(targets, weights={"normals": 20.0})
    assert [type(task) for task in tasks] == [
        Segmentation,
        SurfaceNormals,
        Depth,
        Age,
        Classification,
    ]
    assert [task.out_channels for task in tasks] == [40, 3, 1, 100, 2]
    assert tasks[1].weight == 20.0 and tasks[0].weight == 1.0
    specs = [task.head_spec() for task in tasks]
    assert [spec.dense for spec in specs] == [True, True, True, False, False]
    assert specs[0].name == "semseg"
    with pytest.raises(NddrError, match="unknown target kind"):
        TargetSpec("colour")


def test_every_task_direction_matches_its_metric():
    for kind, task_type in TASKS.items():
        task = task_type("t", 4)
        result = task.metric()
        assert task.primary in task.higher_is_better, kind
        assert type(result).higher_is_better == task.higher_is_better[task.primary], kind


def test_segmentation_loss_upsamples_and_ignores_255():
    task = Segmentation("seg", 3)
    output = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :2] = 255
    upsampled = F.interpolate(output, size=(8, 8), mode="bilinear", align_corners=False)
    expected = F.cross_entropy(upsampled, target, ignore_index=255)
    assert task.loss(output, target).item() == pytest.approx(expected.item())
    assert task.predict(output, (8, 8)).shape == (2, 8, 8)


def test_normals_loss_is_one_minus_cosine_over_valid_pixels():
    task = SurfaceNormals("normals")
    target = torch.zeros(1, 3, 1, 3)
    target[0, 2, 0, :2] = 1.0  # two valid pixels (0, 0, 1); the third is invalid
    output = torch.zeros(1, 3, 1, 3)
    output[0, 2, 0, 0] = 5.0  # same direction: 1 - cos = 0
    output[0, 0, 0, 1] = 1.0  # 90 degrees: 1 - cos = 1
    output[0, 0, 0, 2] = 1.0  # invalid pixel: not counted
    assert task.loss(output, target).item() == pytest.approx(0.5)
    # On unit vectors the l2 loss of paper section 4 is twice this: ||a - b||^2 = 2 - 2 cos.
    assert task.loss(-target, target).item() == pytest.approx(2.0)
    no_valid = task.loss(output.requires_grad_(), torch.zeros_like(target))
    no_valid.backward()
    assert no_valid.item() == 0 and output.grad is not None


def test_depth_loss_is_l1_on_valid_pixels():
    task = Depth("depth")
    output = torch.tensor([1.0, 3.0, 7.0]).view(1, 1, 1, 3)
    target = torch.tensor([2.0, 1.0, 0.0]).view(1, 1, 1, 3)
    assert task.loss(output, target).item() == pytest.approx(1.5)


def test_age_prediction_is_the_expected_age():
    task = Age("age", 100)
    logits = torch.full((1, 100), -1e4)
    logits[0, [10, 20, 60]] = 0.0
    assert task.predict(logits).item() == pytest.approx(30.0, abs=1e-4)


def test_total_loss_weights_tasks():
    tasks = [Classification("a", 2, weight=1.0), Classification("b", 2, weight=3.0)]
    outputs = {"a": torch.tensor([[0.0, 1.0]]), "b": torch.tensor([[1.0, 0.0]])}
    batch = {"a": torch.tensor([1]), "b": torch.tensor([1])}
    total, losses = total_loss(tasks, outputs, batch)
    assert total.item() == pytest.approx(losses["a"].item() + 3 * losses["b"].item())


def test_pictures_are_rgb_panels_or_captions():
    segmentation = Segmentation("seg", 40).picture(np.array([[0, 39], [255, 5]], dtype=np.uint8))
    assert segmentation.shape == (2, 2, 3) and segmentation.dtype == np.uint8
    assert (segmentation[1, 0] == 0).all()  # ignored pixels black
    normals = np.zeros((2, 2, 3), np.float32)
    normals[0, 0] = (0, 0, 1)
    panel = SurfaceNormals("n").picture(normals)
    assert panel[0, 0].tolist() == [127, 127, 255] and panel[1, 1].tolist() == [0, 0, 0]
    assert Depth("d").picture(np.array([[1.0, 2.0], [0.0, 3.0]], np.float32)).shape == (2, 2, 3)
    assert Classification("left", 10).picture(np.int64(7)) == "left 7"
