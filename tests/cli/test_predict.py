"""``nddr predict``: images read as displayed, collision-free outputs, a batch that survives bad
images, and ``--max-size`` with outputs at the image's size."""

import contextlib
import json
from collections.abc import Iterator
from pathlib import PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image

import nddr
from nddr.cli import main
from nddr.cli.predict import output_stems
from nddr.data.base import TargetSpec
from nddr.io import save_state_dict
from nddr.tasks import build_task
from nddr.training.checkpoint import model_metadata
from tests.data.test_image_file import EXIF_ORIENTATION, grey_ramp


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """A tiny segmentation + normals network saved as an nddr model file (untrained)."""
    torch.manual_seed(0)
    tasks = [
        build_task("segmentation", TargetSpec("segmentation", 6)),
        build_task("normals", TargetSpec("normals")),
    ]
    specs = [task.head_spec() for task in tasks]
    network = nddr.build_network("tiny", specs, "nddr", backbone_options={"width": 4})
    experiment = {"data": {"name": "scenes", "options": {"size": 16, "num_images": 2}}}
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_state_dict(network.state_dict(), path, model_metadata(network, tasks, experiment))
    return str(path)


def photo(height: int = 24, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(array: np.ndarray, path, **options) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return str(path)


def predict(model: str, *argv: str) -> int:
    return main(["predict", model, *argv])


def test_16_bit_png_predicts_like_its_8_bit_version(model, tmp_path):
    grey = np.tile(grey_ramp(1, 256), (24, 1))[:, :64]
    grey[0, :] = 255  # the ramp spans 0..255, so the 16-bit version spans 0..65535
    save(grey, tmp_path / "in8" / "x.png")
    save(grey.astype(np.uint16) * 257, tmp_path / "in16" / "x.png")
    for bits in ("8", "16"):
        image = str(tmp_path / f"in{bits}" / "x.png")
        assert predict(model, image, "--out", str(tmp_path / bits)) == 0
    for output in ("x_segmentation.npy", "x_normals.npy"):
        np.testing.assert_array_equal(
            np.load(tmp_path / "16" / output), np.load(tmp_path / "8" / output)
        )


def test_exif_orientation_gives_outputs_of_the_displayed_size(model, tmp_path):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    image = save(photo(120, 160), tmp_path / "portrait.jpg", exif=exif)
    assert predict(model, image, "--out", str(tmp_path / "out")) == 0
    assert np.load(tmp_path / "out" / "portrait_segmentation.npy").shape == (160, 120)
    assert Image.open(tmp_path / "out" / "portrait_normals.png").size == (120, 160)


def test_same_names_in_different_folders_never_overwrite(model, tmp_path, capsys):
    save(photo(seed=1), tmp_path / "in" / "a" / "x.png")
    save(photo(seed=2), tmp_path / "in" / "b" / "x.png")
    save(photo(seed=3), tmp_path / "in" / "b" / "x.jpg")
    out = tmp_path / "out"
    assert predict(model, str(tmp_path / "in"), "--out", str(out)) == 0
    report = json.loads((out / "predictions.json").read_text())
    assert list(report) == ["a/x.png", "b/x.jpg", "b/x.png"]
    assert report["a/x.png"]["segmentation"] == "a/x_segmentation.png"
    assert report["b/x.png"]["segmentation"] == "b/x.png_segmentation.png"
    assert report["b/x.jpg"]["normals"] == "b/x.jpg_normals.png"
    for entry in report.values():
        assert (out / entry["segmentation"]).is_file() and (out / entry["normals"]).is_file()
    first, second = (np.load(out / f"{name}_normals.npy") for name in ("a/x", "b/x.png"))
    assert not np.array_equal(first, second)
    assert f"names relative to {tmp_path / 'in'}" in capsys.readouterr().out


def test_output_names_keep_the_suffix_only_where_they_would_clash():
    names = [PurePosixPath(name) for name in ("a/x.png", "b/x.png", "b/x.jpg", "b/x.png.jpg")]
    stems = [str(stem) for stem in output_stems(names)]
    assert stems == ["a/x", "b/x.png", "b/x.jpg", "b/x.png.jpg"]


def test_globs_are_expanded_by_nddr(model, tmp_path):
    save(photo(), tmp_path / "in" / "a" / "x.png")
    save(photo(), tmp_path / "in" / "b" / "c" / "y.png")
    save(photo(), tmp_path / "in" / "b" / "z.jpg")
    out = tmp_path / "out"
    assert predict(model, f"{tmp_path}/in/**/*.png", "--out", str(out)) == 0
    assert list(json.loads((out / "predictions.json").read_text())) == ["a/x.png", "b/c/y.png"]


def test_a_bad_image_does_not_stop_the_batch(model, tmp_path, capsys):
    save(photo(), tmp_path / "in" / "c_good.png")
    whole = (tmp_path / "in" / "c_good.png").read_bytes()
    (tmp_path / "in" / "b_truncated.png").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "in" / "a_notes.png").write_text("not an image")
    out = tmp_path / "out"
    assert predict(model, str(tmp_path / "in"), "--out", str(out)) == 1
    err = capsys.readouterr().err.splitlines()
    report = json.loads((out / "predictions.json").read_text())
    assert list(report) == ["a_notes.png", "b_truncated.png", "c_good.png"]
    assert report["c_good.png"]["segmentation"] == "c_good_segmentation.png"
    assert (out / "c_good_segmentation.png").is_file()
    for name in ("a_notes.png", "b_truncated.png"):
        assert "cannot be decoded" in report[name]["error"]
        assert any(line.startswith("warning: ") and name in line for line in err), err
    assert err[-1].startswith("nddr predict: 2 of 3 images could not be predicted")


def test_no_image_predicted_is_exit_2_with_one_error_line(model, tmp_path, capsys):
    (tmp_path / "a.png").write_text("not an image")
    (tmp_path / "b.png").write_bytes(b"")
    out = tmp_path / "out"
    assert predict(model, str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out", str(out)) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "no image could be predicted (2 of 2 failed" in errors[0]
    assert set(json.loads((out / "predictions.json").read_text())) == {"a.png", "b.png"}


def test_a_folder_argument_is_searched_not_reported_missing(model, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert predict(model, str(tmp_path / "empty"), "--out", str(tmp_path / "out")) == 2
    assert "holds no image file" in capsys.readouterr().err
    save(photo(), tmp_path / "photos" / "x.png")
    assert predict(model, str(tmp_path / "photos"), "--out", str(tmp_path / "out")) == 0


def test_outputs_inside_an_input_folder_are_not_read_back(model, tmp_path):
    save(photo(), tmp_path / "x.png")
    for _ in range(2):
        assert predict(model, str(tmp_path), "--out", str(tmp_path / "pred")) == 0
    assert list(json.loads((tmp_path / "pred" / "predictions.json").read_text())) == ["x.png"]
    assert not list((tmp_path / "pred").glob(".*.tmp"))


@contextlib.contextmanager
def first_module_inputs() -> Iterator[list[tuple[int, ...]]]:
    """The shape of the first tensor any module is called with while inside: the network's."""
    seen: list[tuple[int, ...]] = []

    def record(module, inputs):
        if not seen:
            seen.append(tuple(inputs[0].shape))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        yield seen
    finally:
        handle.remove()


def test_max_size_downscales_for_the_network_and_outputs_come_back_at_full_size(model, tmp_path):
    image = save(photo(48, 64), tmp_path / "wide.png")
    with first_module_inputs() as seen:
        assert predict(model, image, "--out", str(tmp_path / "out"), "--max-size", "32") == 0
    assert seen == [(1, 3, 24, 32)]
    assert np.load(tmp_path / "out" / "wide_segmentation.npy").shape == (48, 64)
    normals = np.load(tmp_path / "out" / "wide_normals.npy")
    assert normals.shape == (48, 64, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=2), 1.0, rtol=1e-5)


def test_the_default_max_size_is_1024_and_0_is_no_limit(model, tmp_path):
    image = save(photo(16, 2048), tmp_path / "long.png")
    with first_module_inputs() as seen:
        assert predict(model, image, "--out", str(tmp_path / "out")) == 0
    assert seen == [(1, 3, 8, 1024)]
    with first_module_inputs() as seen:
        assert predict(model, image, "--out", str(tmp_path / "out"), "--max-size", "0") == 0
    assert seen == [(1, 3, 16, 2048)]
    assert np.load(tmp_path / "out" / "long_segmentation.npy").shape == (16, 2048)


def test_a_negative_max_size_is_an_error(model, tmp_path, capsys):
    image = save(photo(), tmp_path / "x.png")
    assert predict(model, image, "--out", str(tmp_path / "out"), "--max-size", "-1") == 2
    err = capsys.readouterr().err
    assert "--max-size must be 0 (no limit) or a number of pixels, got -1" in err
