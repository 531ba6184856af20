import json
import math
import subprocess
import sys

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


def test_models_lists_backbones_and_variants(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ["vgg16_lfov", "resnet50", "resnet101", "alexnet", "tiny", "timm:MODEL"]:
        assert name in out
    for variant in ["single", "multi", "cross_stitch", "sluice", "nddr", "shortcut"]:
        assert variant in out
    assert "64/128/256/512/512, output stride 8" in out


def _row(out: str, label: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [label])


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_params_counts_what_nddr_adds_to_vgg16(capsys):
    assert main(["models", "--params", "vgg16_lfov"]) == 0
    out = capsys.readouterr().out
    widths = (64, 128, 256, 512, 512)
    nddr_layers = sum((2 * c) ** 2 + 2 * (2 * c) for c in widths)  # KC x KC conv + BN over KC
    row = _row(out, "nddr")
    total, columns, heads, fusion, head_input, added = map(_number, row[1:7])
    assert fusion == added == nddr_layers and head_input == 0
    assert total == columns + heads + fusion
    assert row[7] == f"{100 * nddr_layers / columns:.2f}%"
    single = _row(out, "single")
    assert _number(single[4]) == 0 and _number(single[1]) == columns + heads
    shortcut = _row(out, "nddr+shortcut")
    assert _number(shortcut[5]) == 2 * (1472 * 512 + 2 * 512)  # one shortcut per column
    multi = _row(out, "multi+shortcut")
    assert _number(multi[5]) == 1472 * 512 + 2 * 512  # the shared trunk's one shortcut
    lfov = 512 * 9 * 1024 + 1024 + 1024 * 1024 + 1024 + 2 * 2 * 1024  # fc6, fc7 and their BN
    assert heads == 2 * lfov + (1024 + 1) * (40 + 3)  # and the two fc8
    per_task = sum(2 * c * c for c in widths)
    assert f"NDDR weights of one task (the 1x1 convs, no BN): {per_task:,}" in out


def test_params_for_k_tasks(capsys):
    assert main(["models", "--params", "tiny", "--tasks", "3"]) == 0
    out = capsys.readouterr().out
    assert "segmentation (40), normals (3), depth (1)" in out
    widths = (16, 32, 64, 64, 64)
    assert _number(_row(out, "nddr")[4]) == sum((3 * c) ** 2 + 2 * 3 * c for c in widths)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["models", "--params", "vgg16"], "unknown backbone 'vgg16': did you mean 'vgg16_lfov'?"),
        (["models", "--params", "tiny", "--tasks", "0"], "--tasks must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "nddr", "models", "--params", "timm:nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "nddr models: error: timm has no model 'nope': see timm.list_models() for the names"
    )
    assert "Traceback" not in result.stderr


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


def test_import_nddr_is_torch_free_and_every_public_name_resolves():
    """``nddr/__init__`` imports its names on first use (PEP 562): ``import nddr`` loads no
    torch, and every name of ``__all__`` (the README's API) is there."""
    code = (
        "import sys, nddr; assert 'torch' not in sys.modules, 'torch imported'; "
        "missing = [n for n in nddr.__all__ if getattr(nddr, n, None) is None]; "
        "assert not missing, missing; "
        "assert {'build_network', 'build_dataset', 'build_tasks', 'load_config', 'train', "
        "'load_run', 'load_network', 'load_weights'} <= set(nddr.__all__)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nddr.nope  # noqa: B018
