"""Reading and writing the files datasets are made of, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nddr.errors import NddrError
from nddr.io import PathLike, atomic_write


def require_file(path: PathLike, what: str, hint: str = "") -> Path:
    """``path`` as a Path if it is a readable file, else an error naming ``what`` it should be."""
    path = Path(path)
    if not path.is_file():
        raise NddrError(f"{what} {str(path)!r} does not exist{': ' + hint if hint else ''}")
    return path


def require_dir(path: PathLike, what: str, hint: str = "") -> Path:
    """``path`` as a Path if it is a directory, else an error naming ``what`` it should be."""
    path = Path(path)
    if not path.is_dir():
        raise NddrError(f"{what} {str(path)!r} is not a directory{': ' + hint if hint else ''}")
    return path


def read_image(path: PathLike) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB."""
    return np.asarray(_open(path).convert("RGB"))


def read_label_png(path: PathLike) -> np.ndarray:
    """A single-channel label PNG as uint8 (H, W), values as stored (no palette conversion)."""
    image = _open(path)
    if image.mode not in ("L", "P"):
        raise NddrError(
            f"label image {str(path)!r} has mode {image.mode}: expected one 8-bit channel (L or P)"
        )
    return np.asarray(image)


def read_rgb_png(path: PathLike) -> np.ndarray:
    """A 3-channel 8-bit PNG as uint8 (H, W, 3), values as stored."""
    image = _open(path)
    if image.mode != "RGB":
        raise NddrError(f"image {str(path)!r} has mode {image.mode}: expected 8-bit RGB")
    return np.asarray(image)


def read_npy(path: PathLike) -> np.ndarray:
    """A ``.npy`` array, refusing pickled object arrays."""
    path = require_file(path, "array file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise NddrError(
            f"array file {str(path)!r} is not a readable .npy array ({error})"
        ) from None


def check_target_size(
    name: str, path: PathLike, value: np.ndarray, image_path: PathLike, image: np.ndarray
) -> None:
    """Raise a one-line error naming both files if target ``name`` (read from ``path``) is not
    the size of its image."""
    if value.shape[:2] != image.shape[:2]:
        raise NddrError(
            f"{name} file {str(path)!r} is {value.shape[0]}x{value.shape[1]} but its image "
            f"{str(image_path)!r} is {image.shape[0]}x{image.shape[1]}: they must match"
        )


def read_lines(path: PathLike) -> list[str]:
    """A list file's lines (UTF-8); an unreadable file is an error naming it."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise NddrError(f"list file {str(path)!r} cannot be read as text ({error})") from None


def read_name_list(path: PathLike) -> list[tuple[str, int]]:
    """The (name, line number) of a split list of sample names (as in ``images/NAME.jpg``),
    blank lines skipped; a line of several words or a path, or a repeated name, is an error."""
    names: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(read_lines(path), start=1):
        name = line.strip()
        if not name:
            continue
        if len(name.split()) != 1 or "/" in name or "\\" in name:
            raise NddrError(
                f"{path}:{number}: expected one sample name per line (as in images/NAME.jpg), "
                f"got {line.strip()!r}"
            )
        if name in seen:
            raise NddrError(
                f"{path}:{number}: {name!r} is listed twice (first on line {seen[name]})"
            )
        seen[name] = number
        names.append((name, number))
    return names


def list_folder(folder: PathLike) -> set[str]:
    """The names in ``folder`` (one listing instead of a stat per file)."""
    try:
        return set(os.listdir(folder))
    except OSError as error:
        raise NddrError(f"folder {str(folder)!r} cannot be listed ({error})") from None


def write_png(array: np.ndarray, path: PathLike) -> None:
    """Write uint8 (H, W) or (H, W, 3) as PNG, atomically (temp file + rename)."""
    path = Path(path)
    with atomic_write(path) as temp:
        Image.fromarray(array).save(temp, format="PNG")


def write_npy(array: np.ndarray, path: PathLike) -> None:
    """Write ``array`` as ``.npy``, atomically."""
    path = Path(path)
    with atomic_write(path) as temp, open(temp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _open(path: PathLike) -> Image.Image:
    path = require_file(path, "image file")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise NddrError(f"image file {str(path)!r} cannot be decoded ({error})") from None
    return image


def cache_dir(root: PathLike | None = None) -> Path:
    """Where built-in datasets are cached: ``root`` if given, else ``$NDDR_CACHE``, else
    ``$XDG_CACHE_HOME/nddr`` (default ``~/.cache/nddr``)."""
    if root is not None:
        return Path(root)
    if os.environ.get("NDDR_CACHE"):
        return Path(os.environ["NDDR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nddr"
