"""Images for inference: the files a command line names, read as they are displayed.

``nddr predict`` takes files, folders and glob patterns; :func:`find_images` expands them into
one sorted list without duplicates, and :func:`relative_names` gives each a name relative to the
folder the inputs share, so two ``img.png`` in different folders never overwrite each other's
outputs. :func:`read_display_image` applies the EXIF orientation and turns any mode (16-bit,
grey, palette, with alpha) into 8-bit RGB by scaling, never by clipping.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import Tensor

from nddr.data.files import _open
from nddr.errors import NddrError
from nddr.io import PathLike

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
"""What a folder or glob pattern contributes: files ending so (any case), hidden ones left out."""

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""PIL modes holding 16-bit grey (PNG opens as ``I;16``; older readers and TIFF as ``I``)."""

BACKGROUND = (255, 255, 255)
"""What transparent pixels are shown over: white, as a viewer or a web page shows them."""


def find_images(inputs: Sequence[str], exclude: PathLike | None = None) -> list[Path]:
    """The image files named by ``inputs``: files as named, folders searched recursively and
    glob patterns (``**`` included) expanded, each folder's and pattern's files sorted.

    Named files are taken whatever their suffix; folders and patterns take files ending in
    :data:`IMAGE_SUFFIXES`. A file reached twice is listed once; files under ``exclude`` (the
    output folder) are left out of folders and patterns.
    """
    found: dict[Path, Path] = {}
    for name in inputs:
        for path in _expand(name, exclude):
            found.setdefault(path.resolve(), path)
    return list(found.values())


def relative_names(paths: Sequence[Path]) -> list[PurePosixPath]:
    """Each path relative to the deepest folder holding them all (``a/x.png``, ``b/x.png``)."""
    common = common_folder(paths)
    return [
        PurePosixPath(Path(os.path.abspath(path)).relative_to(common).as_posix()) for path in paths
    ]


def common_folder(paths: Sequence[Path]) -> Path:
    """The deepest folder holding every path: what :func:`relative_names` are relative to."""
    return Path(os.path.commonpath([Path(os.path.abspath(path)).parent for path in paths]))


def read_display_image(path: PathLike) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB, the way a viewer shows it.

    The EXIF orientation is applied (a portrait photo stays portrait); 16-bit values are scaled
    to 0-255 (``v / 257``, rounded); grey and palette images become RGB; transparent pixels are
    composited over :data:`BACKGROUND`.
    """
    try:
        image = ImageOps.exif_transpose(_open(path))
    except Image.DecompressionBombError as error:
        raise NddrError(
            f"image file {str(path)!r} is too large to decode safely ({error})"
        ) from None
    return to_rgb8(image, path)


def to_rgb8(image: Image.Image, path: PathLike = "image") -> np.ndarray:
    """``image`` in any PIL mode as uint8 (H, W, 3) RGB; ``path`` names it in errors."""
    if image.mode in SIXTEEN_BIT_MODES:
        grey = _scale_16_bit(np.asarray(image), path)
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode == "F":
        raise NddrError(
            f"image file {str(path)!r} holds floating-point pixels (mode F), whose range is "
            "unknown: save it as an 8- or 16-bit image"
        )
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError as error:
        raise NddrError(
            f"image file {str(path)!r} has mode {image.mode}, which cannot be shown as RGB "
            f"({error}): save it as an RGB image"
        ) from None


def fit_within(image: Tensor, max_size: int) -> Tensor:
    """``image`` (N, C, H, W) downscaled (bilinear, antialiased) so that its longer side is at
    most ``max_size`` pixels, keeping its aspect ratio; 0 means no limit."""
    height, width = image.shape[-2:]
    if max_size == 0 or max(height, width) <= max_size:
        return image
    scale = max_size / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def _scale_16_bit(values: np.ndarray, path: PathLike) -> np.ndarray:
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise NddrError(
            f"image file {str(path)!r} holds values from {values.min()} to {values.max()}, "
            "outside 16 bits (0..65535): save it as an 8- or 16-bit image"
        )
    return np.rint(values.astype(np.float32) / 257).astype(np.uint8)


def _expand(name: str, exclude: PathLike | None) -> list[Path]:
    path = Path(name)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = _without(_image_files(path.rglob("*"), path), exclude, path)
        if not found:
            raise NddrError(
                f"image folder {name!r} holds no image file (none ending in "
                f"{', '.join(IMAGE_SUFFIXES)}): pass a folder of images, files or a glob pattern"
            )
        return found
    if glob.has_magic(name):
        matches = map(Path, glob.glob(name, recursive=True))
        found = _without(_image_files(matches), exclude, _fixed_prefix(name))
        if not found:
            raise NddrError(
                f"glob pattern {name!r} matches no image file (none ending in "
                f"{', '.join(IMAGE_SUFFIXES)}): check the pattern, and quote it so nddr expands it"
            )
        return found
    raise NddrError(
        f"image {name!r} does not exist (no such file or folder): pass image files, folders "
        "or glob patterns"
    )


def _image_files(paths: Iterable[Path], root: Path | None = None) -> list[Path]:
    """The non-hidden files among ``paths`` with an image suffix, sorted."""
    return sorted(
        path
        for path in paths
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in _parts_below(path, root))
        and path.is_file()
    )


def _parts_below(path: Path, root: Path | None) -> tuple[str, ...]:
    return path.relative_to(root).parts if root is not None else (path.name,)


def _without(paths: list[Path], exclude: PathLike | None, searched: Path) -> list[Path]:
    """``paths`` less those under ``exclude``, unless the search itself started inside it."""
    if exclude is None:
        return paths
    excluded = Path(exclude).resolve()
    if searched.resolve().is_relative_to(excluded):
        return paths
    return [path for path in paths if not path.resolve().is_relative_to(excluded)]


def _fixed_prefix(pattern: str) -> Path:
    """The folder a glob pattern searches: its parts before the first one with a wildcard."""
    parts = Path(pattern).parts
    fixed = next(index for index, part in enumerate(parts) if glob.has_magic(part))
    return Path(*parts[:fixed]) if fixed else Path(".")
