"""State-dict files: loaded without executing pickled code, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from nddr.errors import NddrError

PathLike = str | os.PathLike[str]


def load_state_dict(path: PathLike) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file, never executing pickled code.

    Torch files go through ``torch.load(weights_only=True)``; a ``{"state_dict": ...}`` or
    ``{"model": ...}`` wrapper is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise NddrError(
            f"weights file {path} not found: pass the path of a .safetensors or .pth file"
        )
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as error:
            raise NddrError(
                f"weights file {path} is not a readable safetensors file ({_first_line(error)})"
            ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" in str(error):
            raise NddrError(
                f"weights file {path} holds pickled objects that would run code when loaded; "
                "refusing it: save a plain state dict (or .safetensors) instead"
            ) from None
        raise NddrError(
            f"weights file {path} is not a readable torch file (corrupt or truncated)"
        ) from None
    except (RuntimeError, OSError, EOFError) as error:
        raise NddrError(
            f"weights file {path} is not a readable torch file ({_first_line(error)})"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise NddrError(f"weights file {path} does not hold a state dict of tensors")
    return dict(state)


def read_metadata(path: PathLike) -> dict[str, object]:
    """The JSON metadata saved beside the tensors of a ``.safetensors`` file (empty if none)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise NddrError(
            f"weights file {path} is not a readable safetensors file ({_first_line(error)})"
        ) from None
    return {key: json.loads(value) for key, value in metadata.items()}


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``.

    A crash or an exception midway leaves any earlier file at ``path`` intact and no temporary
    file behind. The file gets the usual permissions (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield str(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(path: PathLike) -> None:
    """Flush ``path``'s entries (files created or renamed in it) to disk."""
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def file_sha256(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """The SHA-256 hex digest of the file at ``path``, read ``chunk_size`` bytes at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def save_state_dict(
    state: Mapping[str, Tensor], path: PathLike, metadata: Mapping[str, object] | None = None
) -> Path:
    """Write ``state`` as ``.safetensors`` atomically: temporary file, fsync, rename.

    A crash midway leaves any earlier file at ``path`` intact. ``metadata`` values are stored as
    JSON. Tensors are made contiguous and moved to the CPU first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    encoded = {key: json.dumps(value) for key, value in (metadata or {}).items()}
    with atomic_write(path) as temporary:
        save_file(tensors, temporary, metadata=encoded)
    return path


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
