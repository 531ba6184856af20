"""Surface normals from a depth map, for NYUv2 images that come without ground-truth normals.

The paper (§4, NYUv2) trains on surface normals for the 1449 labelled images. When the
ground-truth normals of the paper's release are not at hand, :func:`normals_from_depth`
derives them from the Kinect depth of ``nyu_depth_v2_labeled.mat`` with the RGB-camera
intrinsics of the NYU toolbox (``camera_params.m``). The result follows the convention of
:mod:`nddr.data.base`: unit vectors, x right, y up, z toward the camera, (0, 0, 0) = invalid.

These normals are a plain geometric estimate from the (in-painted) Kinect depth, not the
ground-truth normals of the paper's release (which were fitted by a more elaborate method):
expect quantisation noise on far surfaces and wrong normals across depth edges. Angular
metrics on them are therefore not directly comparable with the paper's table.
"""

from __future__ import annotations

import numpy as np

from nddr.errors import NddrError

FX_RGB = 5.1885790117450188e02
"""Focal length in x (pixels) of the Kinect RGB camera at 640x480 (NYU toolbox)."""
FY_RGB = 5.1946961112127485e02
"""Focal length in y (pixels) of the Kinect RGB camera at 640x480."""
CX_RGB = 3.2558244941119034e02
"""Principal point x (pixels) of the Kinect RGB camera at 640x480."""
CY_RGB = 2.5373616633400465e02
"""Principal point y (pixels) of the Kinect RGB camera at 640x480."""
KINECT_SIZE = (480, 640)
"""(height, width) the intrinsics above belong to."""


def kinect_intrinsics(height: int, width: int) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` of the NYU Kinect RGB camera scaled to an image of ``height x width``.

    The scaling assumes the image is a resize of the full 640x480 frame (not a crop).
    """
    sx = width / KINECT_SIZE[1]
    sy = height / KINECT_SIZE[0]
    # Pixel centres: a resize maps pixel centre u to (u + 0.5) * s - 0.5.
    return FX_RGB * sx, FY_RGB * sy, (CX_RGB + 0.5) * sx - 0.5, (CY_RGB + 0.5) * sy - 0.5


def back_project(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3D points (H, W, 3) in metres of a depth map, in the base.py camera frame.

    Pixel (u, v) at depth Z (metres along the optical axis) is at
    ``X = (u - cx) Z / fx``, ``Y = -(v - cy) Z / fy`` (y up) and ``z = -Z`` (the camera looks
    along -z, so z points toward the camera).
    """
    depth = np.asarray(depth, dtype=np.float64)
    height, width = depth.shape
    u = np.arange(width, dtype=np.float64)[None, :]
    v = np.arange(height, dtype=np.float64)[:, None]
    x = (u - cx) * depth / fx
    y = -(v - cy) * depth / fy
    return np.stack([x, y, -depth], axis=2)


def normals_from_depth(
    depth: np.ndarray,
    fx: float | None = None,
    fy: float | None = None,
    cx: float | None = None,
    cy: float | None = None,
    step: int = 1,
) -> np.ndarray:
    """Unit surface normals float32 (H, W, 3) of a depth map float (H, W) in metres.

    Method: every pixel is back-projected to 3D (:func:`back_project`); the surface tangents
    at pixel (u, v) are the central differences ``P(u+s, v) - P(u-s, v)`` and
    ``P(u, v+s) - P(u, v-s)`` with ``s = step`` pixels (a larger step averages out Kinect
    quantisation noise at the price of blurring small structures); the normal is their
    normalised cross product, flipped if needed so that it faces the camera (``n . P < 0``).

    A pixel is invalid, (0, 0, 0), when its own depth or that of any of the four neighbours
    used is invalid (0, negative, NaN or infinite), when it lies within ``step`` pixels of the
    border, or when the cross product has (near) zero length.

    ``fx, fy, cx, cy`` (pixels) default to the NYU Kinect RGB intrinsics scaled to the depth
    map's size (:func:`kinect_intrinsics`); give all four or none.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise NddrError(f"depth must be a 2-D (H, W) array in metres, got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating) and not np.issubdtype(depth.dtype, np.integer):
        raise NddrError(f"depth must be a numeric array in metres, got dtype {depth.dtype}")
    if step < 1:
        raise NddrError(f"step must be at least 1 pixel, got {step}")
    given = [value is not None for value in (fx, fy, cx, cy)]
    if any(given) and not all(given):
        raise NddrError("give all four intrinsics fx, fy, cx, cy, or none for the NYU Kinect ones")
    height, width = depth.shape
    if not all(given):
        fx, fy, cx, cy = kinect_intrinsics(height, width)
    normals = np.zeros((height, width, 3), dtype=np.float32)
    if height <= 2 * step or width <= 2 * step:
        return normals

    depth = depth.astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    points = back_project(np.where(valid, depth, 0.0), fx, fy, cx, cy)

    s = step
    inner = (slice(s, height - s), slice(s, width - s))
    du = points[s:-s, 2 * s :] - points[s:-s, : -2 * s]
    dv = points[2 * s :, s:-s] - points[: -2 * s, s:-s]
    # Image rows grow downward (-y), columns rightward (+x): dv x du points toward the camera.
    cross = np.cross(dv, du)
    length = np.linalg.norm(cross, axis=2)
    ok = (
        valid[inner]
        & valid[s:-s, 2 * s :]
        & valid[s:-s, : -2 * s]
        & valid[2 * s :, s:-s]
        & valid[: -2 * s, s:-s]
    )
    # (Near) zero length relative to the tangents' lengths: a degenerate, edge-on neighbourhood.
    scale = np.linalg.norm(du, axis=2) * np.linalg.norm(dv, axis=2)
    ok &= (scale > 0) & (length > 1e-6 * scale)
    unit = np.zeros_like(cross)
    unit[ok] = cross[ok] / length[ok, None]
    facing = np.sum(unit * points[inner], axis=2) > 0
    unit[facing] *= -1
    normals[inner] = unit.astype(np.float32)
    return normals
