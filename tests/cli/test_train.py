"""``nddr train / eval / predict`` end to end on a tiny config, and their one-line errors."""

import json

import numpy as np
from PIL import Image

from nddr.cli import main
from tests.helpers import TINY


def _train(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    assert main(["train", str(config), f"run.out={tmp_path}", "optim.steps=2"]) == 0
    out = capsys.readouterr().out
    assert "test metrics" in out and "miou" in out and "checkpoint" in out
    assert "images/s in training steps" in out
    assert json.loads((tmp_path / "tiny-run" / "results.json").read_text())["images_per_s"] > 0
    return tmp_path / "tiny-run"


def test_train_then_eval_and_predict(tmp_path, capsys):
    run_dir = _train(tmp_path, capsys)
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert main(["eval", str(run_dir), "--device", "gpu"]) == 2
    assert "device 'gpu' is not a device" in capsys.readouterr().err
    assert main(["eval", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated.keys() == results.keys()
    for task in results:
        for metric, value in results[task].items():
            assert abs(evaluated[task][metric] - value) < 1e-6 * max(1, abs(value))
    image = tmp_path / "room.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(
        image
    )
    out = tmp_path / "predictions"
    assert main(["predict", str(run_dir), str(image), "--out", str(out)]) == 0
    segmentation = np.asarray(Image.open(out / "room_segmentation.png"))
    assert segmentation.shape == (40, 48, 3)
    normals = np.load(out / "room_normals.npy")
    assert normals.shape == (40, 48, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=2), 1.0, rtol=1e-4)
    labels = np.load(out / "room_segmentation.npy")
    assert labels.dtype == np.uint8 and labels.max() < 6
    assert (
        json.loads((out / "predictions.json").read_text())["room.png"]["normals"]
        == "room_normals.png"
    )
    assert main(["inspect", str(run_dir), "--out", str(tmp_path / "shares.png")]) == 0
    assert "NDDR 1" in capsys.readouterr().out and (tmp_path / "shares.png").is_file()


def test_bad_config_and_checkpoint_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "optim.stepz=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "nddr train: error: config: unknown key 'optim.stepz': did you mean 'optim.steps'?"
    )
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  variant: ndr\n")
    assert main(["train", str(bad)]) == 2
    assert "model.variant = 'ndr' is not valid" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    corrupt = tmp_path / "model.safetensors"
    corrupt.write_bytes(b"not a checkpoint")
    assert main(["predict", str(corrupt), str(corrupt), "--out", str(tmp_path)]) == 2
    assert "\n" not in capsys.readouterr().err.strip()


def test_pipeline_trains_single_task_networks_then_the_fused_one(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    argv = ["train", str(config), f"run.out={tmp_path}", "optim.steps=1", "--from-single-task"]
    assert main(argv) == 0
    for task in ("segmentation", "normals"):
        single = json.loads((tmp_path / f"tiny-run-single-{task}" / "results.json").read_text())
        assert list(single["results"]) == [task]
    fused = (tmp_path / "tiny-run" / "config.yaml").read_text()
    assert "tiny-run-single-segmentation/checkpoints/step_00000001/model.safetensors" in fused
    assert "tiny-run-single-normals" in fused


def test_bf16_autocast_and_channels_last_on_cpu(tmp_path):
    from nddr.training import train
    from nddr.training.config import build_config

    config = build_config(
        TINY, [f"run.out={tmp_path}", "optim.steps=2", "run.amp=bf16", "run.channels_last=true"]
    )
    summary = train(config)
    assert all(
        np.isfinite(value) for values in summary["results"].values() for value in values.values()
    )


def test_pascal_context_trains_evaluates_and_predicts_end_to_end(tmp_path, capsys):
    """The packaged PASCAL-Context NDDR config on a PASCAL_MT folder in the real formats, with a
    tiny backbone: train, eval and predict through the CLI, all four tasks."""
    from tests.data.test_pascal_context import make_pascal

    root = make_pascal(tmp_path / "PASCAL_MT")
    overrides = [
        f"data.root={root}",
        f"run.out={tmp_path / 'runs'}",
        "model.backbone=tiny",
        "model.backbone_weights=null",
        "model.backbone_options={width: 4}",
        "data.options.size=8",
        "data.crop_size=8",
        "data.batch_size=3",
        "data.workers=0",
        "optim.steps=1",
        "run.progress=false",
    ]
    assert main(["train", "pascal_context/nddr", *overrides]) == 0
    out = capsys.readouterr().out
    assert "human_parts" in out and "max_f" in out
    run_dir = tmp_path / "runs" / "pascal-context-resnet50-nddr"
    assert main(["eval", str(run_dir), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert set(evaluated) == {"semseg", "human_parts", "saliency", "normals"}
    assert set(evaluated["saliency"]) == {"max_f", "miou"}
    predictions = tmp_path / "predictions"
    image = root / "JPEGImages" / "2008_000001.jpg"
    assert main(["predict", str(run_dir), str(image), "--out", str(predictions)]) == 0
    saliency = np.load(predictions / "2008_000001_saliency.npy")
    assert saliency.shape == (6, 8) and 0 <= saliency.min() and saliency.max() <= 1
    parts = np.load(predictions / "2008_000001_human_parts.npy")
    assert parts.dtype == np.uint8 and parts.max() < 7
    entry = json.loads((predictions / "predictions.json").read_text())["2008_000001.jpg"]
    assert entry["saliency"] == "2008_000001_saliency.png"
