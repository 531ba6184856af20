"""normals_from_depth: analytic planes, invalid neighbours, orientation and intrinsics."""

import numpy as np
import pytest

from nddr.data.normals_from_depth import (
    CX_RGB,
    CY_RGB,
    FX_RGB,
    FY_RGB,
    back_project,
    kinect_intrinsics,
    normals_from_depth,
)
from nddr.errors import NddrError

H, W = 48, 64


FX, FY, CX, CY = kinect_intrinsics(H, W)


def rays(height: int = H, width: int = W) -> np.ndarray:
    """Direction (x, y, z) of each pixel's ray at unit depth, z = -1 (camera looks along -z)."""
    u = np.arange(width)[None, :]
    v = np.arange(height)[:, None]
    x = np.broadcast_to((u - CX) / FX, (height, width))
    y = np.broadcast_to(-(v - CY) / FY, (height, width))
    return np.stack([x, y, -np.ones((height, width))], axis=2)


def plane_depth(normal: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Depth (metres) of the plane through ``point`` with ``normal``, 0 where it is not seen."""
    normal = normal / np.linalg.norm(normal)
    denominator = rays() @ normal
    with np.errstate(divide="ignore"):
        depth = (normal @ point) / denominator
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


def angle_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cosine = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(cosine))


def interior(array: np.ndarray) -> np.ndarray:
    return array[1:-1, 1:-1]


def test_fronto_parallel_wall_faces_the_camera() -> None:
    depth = np.full((H, W), 2.5, dtype=np.float32)
    normals = normals_from_depth(depth, FX, FY, CX, CY)
    assert normals.dtype == np.float32 and normals.shape == (H, W, 3)
    assert np.allclose(interior(normals), [0.0, 0.0, 1.0], atol=1e-5)


@pytest.mark.parametrize(
    "normal",
    [np.array([0.3, 0.2, 1.0]), np.array([-0.6, 0.1, 0.8]), np.array([0.0, -0.5, 1.0])],
)
def test_tilted_plane_gives_its_analytic_normal(normal: np.ndarray) -> None:
    depth = plane_depth(normal, np.array([0.0, 0.0, -3.0]))
    assert (depth > 0).all()
    normals = normals_from_depth(depth, FX, FY, CX, CY)
    expected = normal / np.linalg.norm(normal)
    assert angle_degrees(interior(normals), expected).max() < 1.0


def test_floor_points_up_and_is_invalid_above_the_horizon() -> None:
    """A floor 1.5 m below the camera: y up; rows at or above the horizon have no depth."""
    depth = plane_depth(np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.5, 0.0]))
    normals = normals_from_depth(depth, FX, FY, CX, CY)
    horizon = int(np.ceil(CY))
    assert (depth[:horizon] == 0).all() and (depth[horizon + 1 :] > 0).all()
    valid = np.any(normals != 0, axis=2)
    assert not valid[: horizon + 1].any()  # no depth, or a neighbour without depth
    assert valid[horizon + 2 : -1, 1:-1].all()
    assert angle_degrees(normals[valid], np.array([0.0, 1.0, 0.0])).max() < 1.0


def test_border_and_invalid_neighbours_are_invalid() -> None:
    depth = np.full((H, W), 2.0, dtype=np.float32)
    depth[10, 20] = 0.0
    depth[30, 40] = np.nan
    depth[5, 50] = np.inf
    normals = normals_from_depth(depth)
    valid = np.any(normals != 0, axis=2)
    assert not valid[0].any() and not valid[-1].any()
    assert not valid[:, 0].any() and not valid[:, -1].any()
    for row, col in [(10, 20), (30, 40), (5, 50)]:
        for dr, dc in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
            assert not valid[row + dr, col + dc]
        assert valid[row + 1, col + 1] and valid[row - 1, col - 1]  # diagonals are not used
    assert np.isfinite(normals).all()
    lengths = np.linalg.norm(normals[valid], axis=1)
    assert np.allclose(lengths, 1.0, atol=1e-5)


def test_larger_step_widens_the_invalid_border() -> None:
    depth = np.full((H, W), 2.0, dtype=np.float32)
    normals = normals_from_depth(depth, step=3)
    valid = np.any(normals != 0, axis=2)
    assert not valid[:3].any() and not valid[:, -3:].any()
    assert valid[3:-3, 3:-3].all()


def test_step_averages_noise() -> None:
    rng = np.random.default_rng(0)
    depth = plane_depth(np.array([0.3, 0.2, 1.0]), np.array([0.0, 0.0, -3.0]))
    noisy = depth + rng.normal(0, 0.002, depth.shape).astype(np.float32)
    expected = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])
    error_1 = np.median(angle_degrees(normals_from_depth(noisy, step=1)[4:-4, 4:-4], expected))
    error_4 = np.median(angle_degrees(normals_from_depth(noisy, step=4)[4:-4, 4:-4], expected))
    assert error_4 < error_1


def test_random_depth_gives_unit_or_zero_normals_facing_the_camera() -> None:
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.5, 5.0, (H, W)).astype(np.float32)
    depth[rng.random((H, W)) < 0.1] = 0
    normals = normals_from_depth(depth)
    lengths = np.linalg.norm(normals, axis=2)
    assert np.all((np.abs(lengths - 1) < 1e-5) | (lengths == 0))
    points = back_project(depth, FX, FY, CX, CY)
    valid = lengths > 0
    assert (np.sum(normals * points, axis=2)[valid] < 0).all()


def test_degenerate_neighbourhood_is_invalid() -> None:
    """Points that all lie on one line give parallel tangents and a zero cross product."""
    depth = np.random.default_rng(2).uniform(1.0, 3.0, (6, 6)).astype(np.float32)
    # Infinite focal lengths put every pixel on the optical axis: tangents along z only.
    normals = normals_from_depth(depth, np.inf, np.inf, 2.0, 2.0)
    assert np.isfinite(normals).all() and not normals.any()


def test_defaults_are_the_nyu_kinect_intrinsics_scaled() -> None:
    assert kinect_intrinsics(480, 640) == (FX_RGB, FY_RGB, CX_RGB, CY_RGB)
    fx, fy, _, _ = kinect_intrinsics(240, 320)
    assert fx == pytest.approx(FX_RGB / 2) and fy == pytest.approx(FY_RGB / 2)
    depth = plane_depth(np.array([0.3, 0.2, 1.0]), np.array([0.0, 0.0, -3.0]))
    assert np.array_equal(normals_from_depth(depth), normals_from_depth(depth, FX, FY, CX, CY))


def test_bad_input_is_an_error() -> None:
    with pytest.raises(NddrError, match="2-D"):
        normals_from_depth(np.zeros((4, 4, 1)))
    with pytest.raises(NddrError, match="all four"):
        normals_from_depth(np.zeros((4, 4)), fx=500.0)
    with pytest.raises(NddrError, match="step"):
        normals_from_depth(np.zeros((4, 4)), step=0)


def test_tiny_map_is_all_invalid() -> None:
    assert not normals_from_depth(np.ones((2, 2), dtype=np.float32)).any()
