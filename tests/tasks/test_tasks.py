from pathlib import PurePosixPath

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nddr.data.base import TargetKind, TargetSpec
from nddr.data.nyuv2 import decode_normals_png
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
from nddr.tasks.metrics import encode_normals


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


def _released_normal_loss(prediction: np.ndarray, png: np.ndarray) -> float:
    """ops/losses.py of the released code in numpy: cosine distance between the l2-normalised
    output and the l2-normalised raw uint8 ground truth, over pixels not (255, 255, 255)."""
    prediction, gt = prediction.reshape(-1, 3), png.reshape(-1, 3)
    mask = np.any(gt != 255, axis=-1).astype(np.float64)
    prediction = prediction / np.linalg.norm(prediction, axis=-1, keepdims=True)
    gt = gt.astype(np.float64) / np.linalg.norm(gt.astype(np.float64), axis=-1, keepdims=True)
    return float(np.sum(mask * (1 - np.sum(prediction * gt, axis=-1))) / np.sum(mask))


def test_encoded_normals_loss_is_the_released_codes():
    rng = np.random.default_rng(0)
    unit = rng.normal(size=(4, 5, 3))
    unit /= np.linalg.norm(unit, axis=-1, keepdims=True)
    png = np.round((unit + 1) * 127.5).astype(np.uint8)
    png[0, :2] = 255  # invalid pixels
    target = torch.from_numpy(decode_normals_png(png, "test")).permute(2, 0, 1)[None]
    output = torch.from_numpy(rng.normal(size=(1, 3, 4, 5)).astype(np.float32))
    valid = png.min(axis=-1) < 255
    stored = encode_normals(target, rounded=True)[0].permute(1, 2, 0).numpy()
    assert (stored[valid] == png[valid]).all()  # the target encodes back to the PNG's values
    task = SurfaceNormals("normals", space="encoded")
    released = _released_normal_loss(output[0].permute(1, 2, 0).numpy(), png)
    assert task.loss(output, target).item() == pytest.approx(released, rel=1e-5)
    assert SurfaceNormals("normals").loss(output, target).item() != pytest.approx(released)
    # What it trains toward is the encoded normal: the released code's stored value.
    stored = torch.from_numpy(png.astype(np.float32)).permute(2, 0, 1)[None]
    assert task.loss(stored, target).item() == pytest.approx(0.0, abs=1e-6)


def test_encoded_normals_predict_decoded_and_measure_raw():
    task = SurfaceNormals("normals", space="encoded")
    raw = torch.tensor([127.5, 127.5, 255.0]).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    predicted = task.predict(raw, (4, 4))
    torch.testing.assert_close(
        predicted, torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    )
    target = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).repeat(1, 1, 4, 4)
    metric = task.metric()
    task.update_metric(metric, raw, target)
    result = metric.compute()
    encoded = np.degrees(
        np.arccos(np.dot([1, 1, 2], [255, 128, 128]) / np.sqrt(6) / np.sqrt(97793))
    )
    assert result["mean"].item() == pytest.approx(90.0, abs=1e-3)
    assert result["encoded_mean"].item() == pytest.approx(encoded, abs=1e-4)


def test_task_options_are_keyword_arguments_checked_by_name_and_value():
    targets = {"seg": TargetSpec("segmentation", 3), "normals": TargetSpec("normals")}
    tasks = build_tasks(targets, options={"normals": {"space": "encoded"}})
    assert tasks[1].space == "encoded" and tasks[1].options == {"space": "encoded"}
    assert build_tasks(targets)[1].options == {"space": "unit"} and tasks[0].options == {}
    assert "space='encoded'" in repr(tasks[1])
    with pytest.raises(
        NddrError, match=r"task 'normals' \(normals\) has no option 'spce': it takes space$"
    ):
        build_tasks(targets, options={"normals": {"spce": "encoded"}})
    with pytest.raises(
        NddrError, match=r"task 'seg' \(segmentation\) has no option 'space': it takes none"
    ):
        build_tasks(targets, options={"seg": {"space": "encoded"}})
    with pytest.raises(NddrError, match="option space = True is not valid: use unit or encoded"):
        build_tasks(targets, options={"normals": {"space": True}})


def test_normals_directions_cover_every_metric_key():
    metric = SurfaceNormals("normals").metric()
    metric.update(torch.ones(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    directions = SurfaceNormals.higher_is_better
    assert directions.keys() == metric.compute().keys()
    assert not directions["encoded_mean"] and not directions["encoded_median"]
    assert directions["encoded_within_11.25"] and directions["encoded_within_30"]


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


def test_every_target_kind_has_one_task_of_that_kind():
    assert set(TASKS) == set(TargetKind)
    for kind, task in TASKS.items():
        assert task.kind is kind
        assert task("t", 4).dense is kind.dense


def test_save_prediction_writes_dense_outputs_and_returns_label_entries(tmp_path):
    stem = PurePosixPath("a/x")
    (tmp_path / "a").mkdir()
    labels = torch.tensor([[0, 2], [1, 2]])
    assert Segmentation("seg", 3).save_prediction(None, labels, tmp_path, stem) == "a/x_seg.png"
    saved = np.load(tmp_path / "a/x_seg.npy")
    assert saved.dtype == np.uint8 and saved.tolist() == [[0, 2], [1, 2]]
    normals = F.normalize(torch.randn(3, 2, 2), dim=0)
    SurfaceNormals("n").save_prediction(None, normals, tmp_path, stem)
    assert np.load(tmp_path / "a/x_n.npy").shape == (2, 2, 3)
    Depth("d").save_prediction(None, torch.rand(1, 2, 2) + 1, tmp_path, stem)
    assert np.load(tmp_path / "a/x_d.npy").shape == (2, 2)
    assert (tmp_path / "a/x_d.png").is_file() and (tmp_path / "a/x_n.png").is_file()
    logits = torch.tensor([[0.0, 2.0]])
    gender = Classification("gender", 2, class_names=("female", "male"))
    entry = gender.save_prediction(logits, torch.tensor(1), tmp_path, stem)
    assert entry == {"class": "male", "probability": round(float(logits.softmax(1)[0, 1]), 4)}
    assert Age("age", 100).save_prediction(None, torch.tensor(31.256), tmp_path, stem) == {
        "expected_age": 31.26
    }
