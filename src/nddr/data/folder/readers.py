"""One reader per target kind and encoding of a ``folder`` dataset: a file in, a raw target out.

Each returns the raw convention of :mod:`nddr.data.base` (uint8 labels with 255 = ignore, unit
float32 normals with (0, 0, 0) = invalid, float32 metres with 0 = invalid) and raises a one-line
:class:`~nddr.errors.NddrError` naming the file, what is wrong and the manifest key that fixes
it. The decoding itself is the NYUv2 loader's (:mod:`nddr.data.nyuv2`), with the manifest's
scale and invalid value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nddr.data.conventions import IGNORE_INDEX
from nddr.data.files import _open, read_label_png, read_npy, read_rgb_png
from nddr.data.folder.manifest import (
    DepthTarget,
    NormalsTarget,
    SaliencyTarget,
    SegmentationTarget,
)
from nddr.data.image_file import SIXTEEN_BIT_MODES
from nddr.data.nyuv2 import decode_normals_png, read_normals_npy
from nddr.errors import NddrError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PNG16_FULL_SCALE = 65535
"""Largest value of a 16-bit PNG channel: normals are stored as (n + 1) / 2 x 65535."""


def read_segmentation(path: Path, target: SegmentationTarget) -> np.ndarray:
    """A one-channel 8-bit label PNG as uint8 (H, W): 0..C-1, the stored ``ignore`` as 255."""
    stored = read_label_png(path)
    unlabelled = stored == target.ignore
    bad = (stored >= target.classes) & ~unlabelled
    if bad.any():
        raise NddrError(
            f"segmentation file {str(path)!r} has label {int(stored[bad][0])}, outside "
            f"0..{target.classes - 1} and the ignore value {target.ignore}: fix the file, or set "
            "classes / ignore in the manifest"
        )
    return np.where(unlabelled, IGNORE_INDEX, stored).astype(np.uint8)


def read_normals(path: Path, target: NormalsTarget) -> np.ndarray:
    """Normals as unit float32 (H, W, 3); the manifest's ``invalid`` pixels as (0, 0, 0)."""
    where = f"normals file {str(path)!r}"
    if target.encoding == "npy":
        return read_normals_npy(path)
    if target.encoding == "png8":
        if png_bit_depth(path) == 16:
            raise NddrError(f"{where} is a 16-bit PNG: set the task's encoding to png16")
        return decode_normals_png(read_rgb_png(path), where, invalid_rgb=target.invalid)
    return decode_normals_png(
        read_rgb16_png(path), where, full_scale=PNG16_FULL_SCALE, invalid_rgb=target.invalid
    )


def read_depth(path: Path, target: DepthTarget) -> np.ndarray:
    """Depth as float32 (H, W) metres (stored value x ``scale``); ``invalid`` pixels as 0."""
    stored = _read_depth_png16(path) if target.encoding == "png16" else _read_depth_npy(path)
    if stored.dtype.kind == "f" and np.isnan(stored).any():
        raise NddrError(
            f"depth file {str(path)!r} has NaN depth: store invalid pixels as the manifest's "
            f"invalid value ({target.invalid:g})"
        )
    # Scaled in float64 and then rounded once: 1500 mm x 0.001 is 1.5 m, not 1.5000001.
    depth = (stored * target.scale).astype(np.float32)
    depth[stored == target.invalid] = 0.0
    if not np.isfinite(depth).all() or (depth < 0).any():
        raise NddrError(
            f"depth file {str(path)!r} has infinite or negative depth: store invalid pixels as "
            f"the manifest's invalid value ({target.invalid:g})"
        )
    return depth


def read_saliency(path: Path, target: SaliencyTarget) -> np.ndarray:
    """A one-channel 8-bit mask PNG as uint8 (H, W): 1 at or above ``threshold``, else 0; the
    stored ``ignore`` value as 255."""
    stored = read_label_png(path)
    mask = (stored >= target.threshold).astype(np.uint8)
    if target.ignore is not None:
        mask[stored == target.ignore] = IGNORE_INDEX
    return mask


def png_bit_depth(path: Path) -> int | None:
    """The bits per channel a PNG's header states (byte 24, in IHDR); None if not a PNG."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(26)
    except OSError:
        return None
    return header[24] if len(header) == 26 and header[:8] == PNG_SIGNATURE else None


def read_rgb16_png(path: Path) -> np.ndarray:
    """A 3-channel 16-bit PNG as uint16 (H, W, 3), decoded by torchvision's libpng (PIL reads
    such files as 8-bit, dropping the low byte)."""
    from torchvision.io import ImageReadMode, decode_png, read_file

    try:
        with warnings.catch_warnings():
            # torchvision 0.29 announces moving its decoders to torchcodec; they still work.
            warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
            decoded = decode_png(read_file(str(path)), mode=ImageReadMode.UNCHANGED)
    except (RuntimeError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NddrError(f"image file {str(path)!r} cannot be decoded as PNG ({first})") from None
    array = decoded.permute(1, 2, 0).numpy()
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype.itemsize != 2:
        raise NddrError(
            f"normals file {str(path)!r} holds {array.shape[2]} channel(s) of "
            f"{8 * array.dtype.itemsize} bits: the png16 encoding is 16-bit RGB (use png8 for "
            "8-bit files)"
        )
    return array.astype(np.uint16)


def _read_depth_png16(path: Path) -> np.ndarray:
    image = _open(path)
    if image.mode not in SIXTEEN_BIT_MODES:
        raise NddrError(
            f"depth file {str(path)!r} has mode {image.mode}: the png16 encoding is one 16-bit "
            "channel (mode I;16)"
        )
    return np.asarray(image)


def _read_depth_npy(path: Path) -> np.ndarray:
    stored = read_npy(path)
    if stored.ndim == 3 and stored.shape[2] == 1:
        stored = stored[:, :, 0]
    if stored.ndim != 2 or stored.dtype.kind not in "fiu":
        raise NddrError(
            f"depth file {str(path)!r} holds {stored.dtype.name} {stored.shape}: the npy "
            "encoding is numbers (H, W)"
        )
    return stored


DENSE_READERS: dict[str, Callable[[Path, object], np.ndarray]] = {
    "segmentation": read_segmentation,
    "normals": read_normals,
    "depth": read_depth,
    "saliency": read_saliency,
}
"""The reader of each dense target kind."""


__all__ = [
    "DENSE_READERS",
    "png_bit_depth",
    "read_depth",
    "read_normals",
    "read_rgb16_png",
    "read_saliency",
    "read_segmentation",
]
