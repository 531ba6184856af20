import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import nddr
from nddr.cli import main
from nddr.data import build_dataset
from nddr.data.transforms import JointTransform
from nddr.io import save_state_dict
from nddr.tasks import build_tasks
from nddr.training import load_model
from nddr.training.checkpoint import model_metadata


def _scenes_checkpoint(tmp_path, scale_heads: float | None = None, task_options=None):
    """A checkpoint of a tiny network for the Scenes data under ``tmp_path`` (2 images, 16 px)."""
    options = {"size": 16, "num_images": 2}
    targets = build_dataset("scenes", tmp_path, "test", **options).targets
    tasks = build_tasks(targets, options=task_options)
    torch.manual_seed(0)
    network = nddr.build_network(
        "tiny", [task.head_spec() for task in tasks], "nddr", backbone_options={"width": 4}
    )
    if scale_heads is not None:
        with torch.no_grad():
            for parameter in network.heads.parameters():
                parameter.fill_(scale_heads)
    experiment = {"data": {"name": "scenes", "root": str(tmp_path), "options": options}}
    path = tmp_path / "model.safetensors"
    return save_state_dict(network.state_dict(), path, model_metadata(network, tasks, experiment))


def test_eval_of_an_encoded_space_model_is_the_released_codes(tmp_path, capsys):
    """A network trained in the released code's normal space keeps it in its checkpoint; its
    encoded angles are the released code's (ops/errors.py, eval_multiple_tasks.py) on its raw
    output, its true angles those of the decoded normals."""
    checkpoint = _scenes_checkpoint(tmp_path, task_options={"normals": {"space": "encoded"}})
    assert main(["eval", str(checkpoint), "--device", "cpu", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["normals"]
    network, tasks, _ = load_model(checkpoint)
    normals = next(task for task in tasks if task.name == "normals")
    assert normals.space == "encoded"
    dataset = build_dataset("scenes", tmp_path, "test", size=16, num_images=2)
    dataset.transform = JointTransform(dataset.targets, train=False)
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    with torch.no_grad():
        raw = network.eval()(batch["image"])["normals"]
    raw = F.interpolate(raw, size=batch["normals"].shape[-2:], mode="bilinear")
    prediction = raw.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    truth = batch["normals"].permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    valid = np.abs(truth).sum(axis=1) > 0
    gt = np.round((truth[valid] + 1) * 127.5)  # the 8-bit ground truth of a normal PNG
    gt /= np.linalg.norm(gt, axis=1, keepdims=True)
    predicted = prediction[valid] / np.linalg.norm(prediction[valid], axis=1, keepdims=True)
    angles = np.degrees(np.arccos(np.clip((predicted * gt).sum(axis=1), -1, 1)))
    assert results["encoded_mean"] == pytest.approx(angles.mean(), abs=1e-3)
    assert results["encoded_median"] == pytest.approx(np.median(angles), abs=1e-3)
    assert results["encoded_within_30"] == pytest.approx(100 * (angles < 30).mean())
    decoded = normals.predict(raw).permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()[valid]
    true = np.degrees(np.arccos(np.clip((decoded * truth[valid]).sum(axis=1), -1, 1)))
    assert results["mean"] == pytest.approx(true.mean(), abs=1e-3)
    assert main(["eval", str(checkpoint), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert f"encoded_mean {results['encoded_mean']:.4g}°" in printed
    assert "released code" in printed


def test_eval_refuses_non_finite_outputs(tmp_path, capsys):
    checkpoint = _scenes_checkpoint(tmp_path, scale_heads=1e38)
    assert main(["eval", str(checkpoint), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nddr eval: error: the network's outputs hold NaN or Inf values")
    assert "'segmentation'" in err and "\n" not in err


def test_eval_refuses_nan_metrics(tmp_path, capsys, monkeypatch):
    checkpoint = _scenes_checkpoint(tmp_path)
    nan = {"segmentation": {"miou": math.nan, "pixel_accuracy": 50.0}}
    monkeypatch.setattr("nddr.training.evaluate.evaluate", lambda *args, **kwargs: nan)
    assert main(["eval", str(checkpoint), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "segmentation/miou came out NaN on scenes test" in err and "\n" not in err


def test_eval_of_a_save_network_file_says_what_it_lacks(tmp_path, capsys):
    network = nddr.build_network("tiny", {"segmentation": 4}, "nddr", backbone_options={"width": 4})
    path = nddr.save_network(network, tmp_path / "net.pt")
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a network file (nddr.save_network), not a training checkpoint" in err
    assert "pass the run folder" in err and "\n" not in err
