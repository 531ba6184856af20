"""Each reader's refusals: the file named, what is wrong, the manifest key that fixes it."""

import numpy as np
import pytest

from nddr.data.folder.manifest import DepthTarget, NormalsTarget, SaliencyTarget
from nddr.data.folder.readers import read_depth, read_normals, read_saliency
from nddr.errors import NddrError
from tests.data.folder.test_dataset import H, W, save, save_rgb16_png

NPY_DEPTH = DepthTarget(kind="depth", file="d/{stem}.npy", encoding="npy")


def _depth_with(value: float) -> np.ndarray:
    depth = np.ones((H, W), np.float32)
    depth[1, 2] = value
    return depth


@pytest.mark.parametrize(
    ("read", "write", "fragment"),
    [
        (
            lambda path: read_depth(path, NPY_DEPTH),
            lambda path: save(_depth_with(np.nan), path.with_suffix(".npy")),
            "has NaN depth: store invalid pixels as the manifest's invalid value (0)",
        ),
        (
            lambda path: read_depth(path, NPY_DEPTH),
            lambda path: save(_depth_with(-2.0), path.with_suffix(".npy")),
            "has infinite or negative depth",
        ),
        (
            lambda path: read_depth(path, NPY_DEPTH),
            lambda path: save(np.ones((H, W, 3), np.float32), path.with_suffix(".npy")),
            "holds float32 (6, 8, 3): the npy encoding is numbers (H, W)",
        ),
        (
            lambda path: read_normals(
                path, NormalsTarget(kind="normals", file="{stem}", encoding="png8")
            ),
            lambda path: save_rgb16_png(np.full((H, W, 3), 40000, np.uint16), path),
            "is a 16-bit PNG: set the task's encoding to png16",
        ),
        (
            lambda path: read_normals(
                path, NormalsTarget(kind="normals", file="{stem}", encoding="png16")
            ),
            lambda path: save(np.full((H, W, 3), 200, np.uint8), path),
            "holds 3 channel(s) of 8 bits: the png16 encoding is 16-bit RGB",
        ),
        (
            lambda path: read_saliency(path, SaliencyTarget(kind="saliency", file="{stem}")),
            lambda path: save(np.zeros((H, W, 3), np.uint8), path),
            "has mode RGB: expected one 8-bit channel",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_it(tmp_path, read, write, fragment):
    path = tmp_path / "target.png"
    write(path)
    if not path.exists():
        path = path.with_suffix(".npy")
    with pytest.raises(NddrError) as error:
        read(path)
    message = str(error.value)
    assert str(path) in message and fragment in message and "\n" not in message, message


def test_depth_is_scaled_and_its_invalid_value_zeroed(tmp_path):
    stored = np.full((H, W), 2500, np.uint16)
    stored[0, 0] = 65535
    path = save(stored, tmp_path / "depth.png")
    target = DepthTarget(kind="depth", file="{stem}", encoding="png16", scale=0.001, invalid=65535)
    depth = read_depth(path, target)
    assert depth.dtype == np.float32 and depth[0, 0] == 0 and depth[3, 3] == pytest.approx(2.5)
