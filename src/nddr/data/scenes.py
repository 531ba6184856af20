"""The built-in "Scenes" dataset: procedurally rendered rooms with exact dense targets.

It needs no download and runs anywhere: it is the package's default dataset.

Scene model
-----------
World frame: metres, y up, the floor is the plane y = 0. Every scene is a closed box-shaped room:
floor, ceiling (y = ceiling height) and four walls (x = left / right, z = back / front). The camera
stands inside at (0, h, 0), looks roughly toward the back wall (-z), turned by a small random yaw
and pitched down a little. Two to five objects stand on the floor in front of it, apart from each
other and from the walls: spheres, boxes turned about the vertical axis, and vertical cylinders
with a top cap. Objects may occlude each other.

Every surface has two colours mixed by a solid texture (plain, stripes, checker or a marble-like
noise) evaluated at the hit point in the surface's own frame. A directional light from above
gives Lambertian shading plus ambient light; the objects cast hard shadows.

Rendering casts one ray through the centre of each pixel of a pinhole camera (square images,
random vertical field of view), intersects it analytically with the room and every object and
keeps the nearest hit. The targets are exact for that ray: the class of the surface
(:data:`SCENE_CLASSES`), its analytic normal in camera coordinates (x right, y up, z toward the
camera; unit, facing the camera) and its depth (the z-distance in metres). The room is closed, so
every pixel hits something; a pixel that did not would be marked invalid (255, (0, 0, 0), 0).

Scene ``i`` of a split depends only on (seed, split, i), not on the image size or count: train and
test draw from disjoint :class:`numpy.random.SeedSequence` streams. Generated splits are cached as
one ``.npz`` per (split, size, count, seed, :data:`GENERATOR_VERSION`).
"""

from __future__ import annotations

import colorsys
import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nddr.data.base import IGNORE_INDEX, MultiTaskDataset, RawSample, TargetSpec, Transform
from nddr.data.conventions import SPLITS, check_split
from nddr.data.files import cache_dir
from nddr.errors import NddrError
from nddr.io import PathLike, atomic_write

SCENE_CLASSES = ("floor", "wall", "ceiling", "sphere", "box", "cylinder")
"""Segmentation classes of :class:`Scenes`, in label order (label = index)."""

GENERATOR_VERSION = 1
"""Bumped whenever the generator's output changes, so that stale caches are never reused."""

DEFAULT_COUNTS = {"train": 2000, "test": 500}
MIN_SIZE = 16
MAX_OBJECTS = 5

_FLOOR, _WALL, _CEILING, _SPHERE, _BOX, _CYLINDER = range(len(SCENE_CLASSES))
_OBJECT_KINDS = (_SPHERE, _BOX, _CYLINDER)

# Room surfaces are surface ids 0..5; object slot k is surface id _ROOM + k.
_ROOM = 6
_ROOM_CLASS = np.array([_FLOOR, _CEILING, _WALL, _WALL, _WALL, _WALL], dtype=np.uint8)
_ROOM_NORMAL = np.array(
    [[0, 1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float32
)
# Appearance table columns: colour a (3), colour b (3), texture kind, period, axis a (3),
# axis b (3), offset (3).
_PLAIN, _STRIPES, _CHECKER, _MARBLE = range(4)
_APPEARANCE = 17
_EPS = np.float32(1e-4)
_TINY = np.float32(1e-12)
_RAYS_PER_CHUNK = 1 << 18


@dataclass
class _SceneBatch:
    """Parameters of B scenes, one row each (world frame, metres)."""

    origin: np.ndarray  # (B, 3) camera position
    axes: np.ndarray  # (B, 3, 3) columns: camera right, up and backward (+z) axes
    tan_half_fov: np.ndarray  # (B,)
    room: np.ndarray  # (B, 5): x_left, x_right, ceiling height, z_back, z_front
    light: np.ndarray  # (B, 3) unit direction toward the light
    light_colour: np.ndarray  # (B, 3)
    ambient: np.ndarray  # (B,)
    kind: np.ndarray  # (B, K) int8 class of object slot k, -1 = empty
    base: np.ndarray  # (B, K, 3) centre of the object's footprint on the floor
    turn: np.ndarray  # (B, K, 2) cos and sin of the object's yaw
    extent: np.ndarray  # (B, K, 3) sphere (r, r, r), box half sizes, cylinder (r, height, r)
    appearance: np.ndarray  # (B, 6 + K, _APPEARANCE) per surface

    @classmethod
    def empty(cls, count: int) -> _SceneBatch:
        def zeros(*shape: int) -> np.ndarray:
            return np.zeros(shape, dtype=np.float32)

        return cls(
            origin=zeros(count, 3),
            axes=zeros(count, 3, 3),
            tan_half_fov=zeros(count),
            room=zeros(count, 5),
            light=zeros(count, 3),
            light_colour=zeros(count, 3),
            ambient=zeros(count),
            kind=np.full((count, MAX_OBJECTS), -1, dtype=np.int8),
            base=zeros(count, MAX_OBJECTS, 3),
            turn=zeros(count, MAX_OBJECTS, 2),
            extent=zeros(count, MAX_OBJECTS, 3),
            appearance=zeros(count, _ROOM + MAX_OBJECTS, _APPEARANCE),
        )


def _colour(rng: np.random.Generator, saturation: tuple, value: tuple) -> list[float]:
    return list(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation), rng.uniform(*value)))


def _unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / max(float(np.linalg.norm(vector)), 1e-6)


def _appearance(
    rng: np.random.Generator,
    kinds: tuple[float, float, float, float],
    saturation: tuple[float, float],
    value: tuple[float, float],
    period: tuple[float, float],
    stripe_axis: np.ndarray | None = None,
) -> np.ndarray:
    """One row of the appearance table: two colours, a texture and its parameters."""
    first = _colour(rng, saturation, value)
    if rng.uniform() < 0.5:
        second = [c * rng.uniform(0.35, 0.7) for c in first]
    else:
        second = _colour(rng, saturation, value)
    kind = rng.choice(4, p=kinds)
    axis_a = _unit(rng) if stripe_axis is None else stripe_axis
    return np.array(
        [
            *first,
            *second,
            kind,
            rng.uniform(*period),
            *axis_a,
            *_unit(rng),
            *rng.uniform(-10, 10, size=3),
        ],
        dtype=np.float32,
    )


def _sample_scene(rng: np.random.Generator, batch: _SceneBatch, row: int) -> None:
    """Draw scene ``row`` of ``batch``: camera, room, light, objects and appearances."""
    yaw = rng.uniform(-0.35, 0.35)
    pitch = rng.uniform(0.08, 0.4)
    height = rng.uniform(1.1, 1.9)
    tan_half = math.tan(math.radians(rng.uniform(50, 65)) / 2)
    x_left, x_right = -rng.uniform(2.0, 4.5), rng.uniform(2.0, 4.5)
    ceiling = max(height + 0.5, rng.uniform(2.6, 3.6))
    z_back, z_front = -rng.uniform(5.5, 10.0), rng.uniform(0.5, 2.0)

    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    right = np.array([cy, 0.0, -sy])
    forward = np.array([-sy, 0.0, -cy])  # horizontal viewing direction
    # Pitching down by p: backward = cos(p) * -forward + sin(p) * up.
    backward = cp * -forward + sp * np.array([0.0, 1.0, 0.0])
    up = np.cross(backward, right)
    batch.origin[row] = (0.0, height, 0.0)
    batch.axes[row] = np.stack([right, up, backward], axis=1)
    batch.tan_half_fov[row] = tan_half
    batch.room[row] = (x_left, x_right, ceiling, z_back, z_front)

    elevation, azimuth = rng.uniform(0.6, 1.3), rng.uniform(0, 2 * math.pi)
    batch.light[row] = (
        math.cos(elevation) * math.sin(azimuth),
        math.sin(elevation),
        math.cos(elevation) * math.cos(azimuth),
    )
    batch.light_colour[row] = rng.uniform(1.0, 1.2) + rng.uniform(-0.08, 0.08, size=3)
    batch.ambient[row] = rng.uniform(0.25, 0.45)

    placed: list[tuple[float, float, float]] = []
    far = min(7.0, -z_back - 0.5)
    for slot in range(int(rng.integers(2, MAX_OBJECTS + 1))):
        kind = _OBJECT_KINDS[int(rng.integers(3))]
        if kind == _SPHERE:
            radius = rng.uniform(0.25, 0.8)
            extent = (radius, radius, radius)
            footprint = radius
        elif kind == _BOX:
            extent = tuple(rng.uniform(0.2, 0.7, size=3))
            footprint = math.hypot(extent[0], extent[2])
        else:
            radius = rng.uniform(0.2, 0.55)
            extent = (radius, rng.uniform(0.4, 1.8), radius)
            footprint = radius
        for _ in range(30):
            distance = rng.uniform(1.8, far)
            side = rng.uniform(-0.9, 0.9) * distance * tan_half
            x, _, z = distance * forward + side * right
            inside = (
                x_left + footprint + 0.05 <= x <= x_right - footprint - 0.05
                and z_back + footprint + 0.05 <= z <= z_front - footprint - 0.05
                and math.hypot(x, z) >= footprint + 0.8
            )
            apart = all(math.hypot(x - ox, z - oz) >= footprint + r + 0.1 for ox, oz, r in placed)
            if inside and apart:
                break
        else:
            continue
        placed.append((x, z, footprint))
        angle = rng.uniform(0, 2 * math.pi)
        batch.kind[row, slot] = kind
        batch.base[row, slot] = (x, 0.0, z)
        batch.turn[row, slot] = (math.cos(angle), math.sin(angle))
        batch.extent[row, slot] = extent
        batch.appearance[row, _ROOM + slot] = _appearance(
            rng, (0.25, 0.3, 0.25, 0.2), (0.45, 0.95), (0.55, 1.0), (0.15, 0.45)
        )

    table = batch.appearance[row]
    table[0] = _appearance(rng, (0.2, 0.25, 0.4, 0.15), (0.05, 0.5), (0.35, 0.85), (0.6, 1.4))
    table[1] = _appearance(rng, (0.85, 0.05, 0.05, 0.05), (0.0, 0.15), (0.75, 1.0), (0.4, 1.0))
    diagonal = np.array([math.sqrt(0.5), 0.0, math.sqrt(0.5)])
    table[2:6] = _appearance(
        rng, (0.4, 0.3, 0.1, 0.2), (0.05, 0.45), (0.5, 0.95), (0.2, 0.6), stripe_axis=diagonal
    )


def _to_local(
    batch: _SceneBatch, rows: np.ndarray, slot: int, point: tuple, direction: tuple
) -> tuple[tuple, tuple]:
    """Points and directions of ``rows`` in the frame of object ``slot`` (origin at its base)."""
    base = batch.base[rows, slot]
    cos, sin = batch.turn[rows, slot, 0:1], batch.turn[rows, slot, 1:2]
    x, y, z = point[0] - base[:, 0:1], point[1] - base[:, 1:2], point[2] - base[:, 2:3]
    dx, dy, dz = direction
    return (
        (cos * x - sin * z, y, sin * x + cos * z),
        (cos * dx - sin * dz, dy, sin * dx + cos * dz),
    )


def _sphere_t(origin: tuple, direction: tuple, extent: np.ndarray) -> np.ndarray:
    """Ray parameter of the first hit with the sphere of radius r centred at (0, r, 0)."""
    radius = extent[:, 0:1]
    ox, oy, oz = origin[0], origin[1] - radius, origin[2]
    dx, dy, dz = direction
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - radius * radius
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / a
    return np.where((disc > 0) & (t > _EPS), t, np.inf)


def _box_t(origin: tuple, direction: tuple, extent: np.ndarray) -> np.ndarray:
    """Ray parameter of the first hit with the box |x| <= hx, 0 <= y <= 2 hy, |z| <= hz."""
    near = far = None
    for axis in range(3):
        half = extent[:, axis : axis + 1]
        low, high = (-half, half) if axis != 1 else (0.0, 2 * half)
        step = direction[axis]
        step = np.where(step == 0, _TINY, step)
        t1, t2 = (low - origin[axis]) / step, (high - origin[axis]) / step
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        near = lo if near is None else np.maximum(near, lo)
        far = hi if far is None else np.minimum(far, hi)
    return np.where((near <= far) & (near > _EPS), near, np.inf)


def _cylinder_t(origin: tuple, direction: tuple, extent: np.ndarray) -> np.ndarray:
    """Ray parameter of the first hit with the cylinder x² + z² <= r², 0 <= y <= height."""
    radius, height = extent[:, 0:1], extent[:, 1:2]
    ox, oy, oz = origin
    dx, dy, dz = direction
    a = dx * dx + dz * dz
    b = ox * dx + oz * dz
    c = ox * ox + oz * oz - radius * radius
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        side = (-b - np.sqrt(np.maximum(disc, 0))) / a
        y = oy + side * dy
        side = np.where((disc > 0) & (side > _EPS) & (y >= 0) & (y <= height), side, np.inf)
        cap = (height - oy) / np.where(dy == 0, _TINY, dy)
    cx, cz = ox + cap * dx, oz + cap * dz
    cap = np.where((cap > _EPS) & (cx * cx + cz * cz <= radius * radius), cap, np.inf)
    return np.minimum(side, cap)


_HITS = ((_SPHERE, _sphere_t), (_BOX, _box_t), (_CYLINDER, _cylinder_t))


def _object_normals(kind: int, q: tuple, extent: np.ndarray) -> tuple:
    """Outward unit normals, in the object's frame, at points ``q`` on its surface."""
    qx, qy, qz = q
    if kind == _SPHERE:
        radius = extent[:, 0]
        return qx / radius, (qy - radius) / radius, qz / radius
    if kind == _BOX:
        centred = np.stack([qx, qy - extent[:, 1], qz], axis=1)
        axis = np.argmax(np.abs(centred) / extent, axis=1)
        picked = np.take_along_axis(centred, axis[:, None], axis=1)[:, 0]
        normal = np.zeros_like(centred)
        normal[np.arange(len(axis)), axis] = np.sign(picked)
        return normal[:, 0], normal[:, 1], normal[:, 2]
    radial = np.sqrt(qx * qx + qz * qz)
    cap = qy / extent[:, 1] >= radial / extent[:, 0]
    scale = np.where(cap, 0, 1 / np.maximum(radial, _TINY))
    return qx * scale, np.where(cap, 1, 0).astype(qx.dtype), qz * scale


def _texture(q: tuple, table: np.ndarray) -> np.ndarray:
    """Mix weight in [0, 1] of the second colour at texture points ``q`` (N,) per surface."""
    kind, period = table[:, 6], table[:, 7]
    qx, qy, qz = (q[i] + table[:, 14 + i] for i in range(3))
    along_a = qx * table[:, 8] + qy * table[:, 9] + qz * table[:, 10]
    along_b = qx * table[:, 11] + qy * table[:, 12] + qz * table[:, 13]
    stripes = np.clip(0.5 + 2 * np.sin(np.float32(2 * math.pi) * along_a / period), 0, 1)
    cells = np.floor(qx / period) + np.floor(qy / period) + np.floor(qz / period)
    checker = np.mod(cells, 2)
    warp = np.float32(2.5) * np.sin(np.float32(2 * math.pi / 1.7) * along_b / period)
    marble = 0.5 + 0.5 * np.sin(np.float32(2 * math.pi) * along_a / period + warp)
    weight = np.where(kind == _STRIPES, stripes, 0)
    weight = np.where(kind == _CHECKER, checker, weight)
    return np.where(kind == _MARBLE, marble, weight).astype(np.float32)


def _render(batch: _SceneBatch, size: int) -> dict[str, np.ndarray]:
    """Ray-cast every scene of ``batch`` at ``size`` x ``size``: image and the three targets."""
    count, pixels = len(batch.origin), size * size
    grid = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * np.float32(2 / size) - 1
    u = np.tile(grid, size)[None] * batch.tan_half_fov[:, None]
    v = -np.repeat(grid, size)[None] * batch.tan_half_fov[:, None]
    axes = batch.axes
    direction = tuple(u * axes[:, i, 0:1] + v * axes[:, i, 1:2] - axes[:, i, 2:3] for i in range(3))
    direction = tuple(np.where(d == 0, _TINY, d) for d in direction)
    dx, dy, dz = direction
    origin = tuple(batch.origin[:, i : i + 1] for i in range(3))
    ox, oy, oz = origin

    # The room: the camera is inside, so the ray leaves through the nearest of three planes.
    x_left, x_right, ceiling, z_back, z_front = (batch.room[:, i : i + 1] for i in range(5))
    tx = (np.where(dx > 0, x_right, x_left) - ox) / dx
    ty = (np.where(dy > 0, ceiling, 0) - oy) / dy
    tz = (np.where(dz > 0, z_front, z_back) - oz) / dz
    t = np.minimum(np.minimum(tx, ty), tz)
    surface = np.where(
        t == ty,
        np.where(dy < 0, 0, 1),
        np.where(t == tx, np.where(dx < 0, 2, 3), np.where(dz < 0, 4, 5)),
    ).astype(np.int8)

    for slot in range(MAX_OBJECTS):
        for kind, hit in _HITS:
            rows = np.flatnonzero(batch.kind[:, slot] == kind)
            if rows.size == 0:
                continue
            local_origin, local_direction = _to_local(
                batch,
                rows,
                slot,
                tuple(o[rows] for o in origin),
                tuple(d[rows] for d in direction),
            )
            t_object = hit(local_origin, local_direction, batch.extent[rows, slot])
            current = t[rows]
            closer = t_object < current
            t[rows] = np.where(closer, t_object, current)
            surface[rows] = np.where(closer, _ROOM + slot, surface[rows])

    # Per pixel (flat): the hit point, its surface's class, normal and texture point.
    point = tuple(o + t * d for o, d in zip(origin, direction))
    flat_point = tuple(p.ravel() for p in point)
    flat_surface = surface.ravel().astype(np.intp)
    row = np.repeat(np.arange(count), pixels)
    is_object = flat_surface >= _ROOM
    slot_of = np.where(is_object, flat_surface - _ROOM, 0)
    object_kind = np.where(is_object, batch.kind[row, slot_of], -1)
    room_surface = np.minimum(flat_surface, _ROOM - 1)
    label = np.where(is_object, object_kind, _ROOM_CLASS[room_surface]).astype(np.uint8)
    normal = [_ROOM_NORMAL[room_surface, i] for i in range(3)]
    texture_point = [p.copy() for p in flat_point]
    for kind, _ in _HITS:
        index = np.flatnonzero(object_kind == kind)
        if index.size == 0:
            continue
        rows, slots = row[index], slot_of[index]
        base = batch.base[rows, slots]
        cos, sin = batch.turn[rows, slots, 0], batch.turn[rows, slots, 1]
        x, y, z = (flat_point[i][index] - base[:, i] for i in range(3))
        q = (cos * x - sin * z, y, sin * x + cos * z)
        nx, ny, nz = _object_normals(kind, q, batch.extent[rows, slots])
        normal[0][index] = cos * nx + sin * nz
        normal[1][index] = ny
        normal[2][index] = -sin * nx + cos * nz
        for i in range(3):
            texture_point[i][index] = q[i]
    normal = [n.reshape(count, pixels) for n in normal]
    facing = normal[0] * dx + normal[1] * dy + normal[2] * dz
    normal = [np.where(facing > 0, -n, n) for n in normal]

    # Shadows: objects between the hit point and the light.
    light = tuple(batch.light[:, i : i + 1] for i in range(3))
    start = tuple(p + np.float32(1e-3) * n for p, n in zip(point, normal))
    shadow = np.zeros((count, pixels), dtype=bool)
    for slot in range(MAX_OBJECTS):
        for kind, hit in _HITS:
            rows = np.flatnonzero(batch.kind[:, slot] == kind)
            if rows.size == 0:
                continue
            local_origin, local_direction = _to_local(
                batch, rows, slot, tuple(s[rows] for s in start), tuple(d[rows] for d in light)
            )
            blocked = np.isfinite(hit(local_origin, local_direction, batch.extent[rows, slot]))
            shadow[rows] |= blocked

    table = batch.appearance[row, flat_surface]
    weight = _texture(tuple(texture_point), table)[:, None]
    albedo = (table[:, 0:3] * (1 - weight) + table[:, 3:6] * weight).reshape(count, pixels, 3)
    lambert = np.maximum(normal[0] * light[0] + normal[1] * light[1] + normal[2] * light[2], 0)
    lambert = np.where(shadow, 0, lambert)
    ambient = batch.ambient[:, None]
    shade = ambient * (np.float32(0.8) + np.float32(0.2) * normal[1]) + (1 - ambient) * lambert
    colour = albedo * (shade[..., None] * batch.light_colour[:, None, :])
    image = np.round(np.clip(colour, 0, 1) * 255).astype(np.uint8)

    camera_normal = np.stack(
        [sum(normal[j] * axes[:, j, i : i + 1] for j in range(3)) for i in range(3)], axis=-1
    )
    camera_normal /= np.linalg.norm(camera_normal, axis=-1, keepdims=True)
    valid = np.isfinite(t) & (t > 0)
    label = label.reshape(count, pixels)
    label[~valid] = IGNORE_INDEX
    camera_normal[~valid] = 0
    depth = np.where(valid, t, 0).astype(np.float32)
    return {
        "image": image.reshape(count, size, size, 3),
        "segmentation": label.reshape(count, size, size),
        "normals": camera_normal.astype(np.float32).reshape(count, size, size, 3),
        "depth": depth.reshape(count, size, size),
    }


def generate_scenes(
    num_images: int, size: int = 64, seed: int = 0, split: str = "train"
) -> dict[str, np.ndarray]:
    """Render scenes 0..num_images-1 of ``split``: "image" uint8 (N, H, W, 3), "segmentation"
    uint8 (N, H, W), "normals" float32 (N, H, W, 3), "depth" float32 (N, H, W)."""
    _check_args(split, size, num_images, seed)
    stream = SPLITS.index(split)
    out = {
        "image": np.empty((num_images, size, size, 3), np.uint8),
        "segmentation": np.empty((num_images, size, size), np.uint8),
        "normals": np.empty((num_images, size, size, 3), np.float32),
        "depth": np.empty((num_images, size, size), np.float32),
    }
    chunk = max(1, _RAYS_PER_CHUNK // (size * size))
    for start in range(0, num_images, chunk):
        stop = min(start + chunk, num_images)
        batch = _SceneBatch.empty(stop - start)
        for index in range(start, stop):
            sequence = np.random.SeedSequence(seed, spawn_key=(stream, index))
            _sample_scene(np.random.default_rng(sequence), batch, index - start)
        for key, value in _render(batch, size).items():
            out[key][start:stop] = value
    return out


def _check_args(split: str, size: int, num_images: int, seed: int) -> None:
    check_split(split, "Scenes")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise NddrError(f"Scenes size {size!r} is invalid: use an integer >= {MIN_SIZE} pixels")
    if (
        isinstance(num_images, bool)
        or not isinstance(num_images, (int, np.integer))
        or num_images < 1
    ):
        raise NddrError(f"Scenes num_images {num_images!r} is invalid: use an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NddrError(f"Scenes seed {seed!r} is invalid: use an integer >= 0")


class Scenes(MultiTaskDataset):
    """Procedurally rendered rooms with segmentation (:data:`SCENE_CLASSES`), normals and depth.

    ``root`` is the cache directory (default :func:`nddr.data.files.cache_dir`); the split is
    generated on first use and cached under ``root/scenes``. ``num_images`` defaults to 2000
    (train) or 500 (test); ``size`` is the image side in pixels; ``tasks`` keeps a subset of
    the targets.
    """

    class_names = SCENE_CLASSES

    def __init__(
        self,
        root: PathLike | None = None,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
        *,
        size: int = 64,
        num_images: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(transform)
        self.check_split(split)
        count = DEFAULT_COUNTS[split] if num_images is None else num_images
        _check_args(split, size, count, seed)
        self.split, self.size, self.num_images, self.seed = split, int(size), int(count), int(seed)
        self.targets = {
            "segmentation": TargetSpec("segmentation", len(SCENE_CLASSES), SCENE_CLASSES),
            "normals": TargetSpec("normals"),
            "depth": TargetSpec("depth"),
        }
        self.select_targets(tasks)
        name = f"scenes-v{GENERATOR_VERSION}-{split}-{self.size}px-n{self.num_images}-seed{self.seed}.npz"
        self.cache_file: Path | None = cache_dir(root) / "scenes" / name
        self._arrays = self._load() or self._generate_and_save()

    def __len__(self) -> int:
        return self.num_images

    def load_raw(self, index: int) -> RawSample:
        sample = {"image": self._arrays["image"][index].copy()}
        for name in self.targets:
            sample[name] = self._arrays[name][index].copy()
        return sample

    def source(self, index: int) -> str:
        where = f"cache file {self.cache_file}" if self.cache_file else "not cached"
        return f"scenes[{self.split} {index}] ({where})"

    def _expected_shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        n, s = self.num_images, self.size
        return {
            "image": ((n, s, s, 3), np.dtype(np.uint8)),
            "segmentation": ((n, s, s), np.dtype(np.uint8)),
            "normals": ((n, s, s, 3), np.dtype(np.float32)),
            "depth": ((n, s, s), np.dtype(np.float32)),
        }

    def _load(self) -> dict[str, np.ndarray] | None:
        """The cached arrays, or None if there is no usable cache file (it is then rebuilt)."""
        path = self.cache_file
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in self._expected_shapes()}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            warnings.warn(
                f"Scenes cache file {path} is unreadable ({error}); regenerating it", stacklevel=3
            )
            return None
        for key, (shape, dtype) in self._expected_shapes().items():
            if arrays[key].shape != shape or arrays[key].dtype != dtype:
                warnings.warn(
                    f"Scenes cache file {path} has a wrong {key} array; regenerating it",
                    stacklevel=3,
                )
                return None
        return arrays

    def _generate_and_save(self) -> dict[str, np.ndarray]:
        arrays = generate_scenes(self.num_images, self.size, self.seed, self.split)
        path = self.cache_file
        try:
            with atomic_write(path) as temp, open(temp, "wb") as file:
                np.savez(file, **arrays)
        except OSError as error:
            warnings.warn(
                f"cannot write the Scenes cache file {path} ({error}); keeping the images in "
                "memory only: pass a writable root or set NDDR_CACHE",
                stacklevel=3,
            )
            self.cache_file = None
        return arrays
