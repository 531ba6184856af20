"""State-dict files: loaded without executing pickled code, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from nddr.errors import NddrError, describe_keys

PathLike = str | os.PathLike[str]


CHECKSUM_KEY = "nddr_tensors_sha256"
"""Metadata key of the SHA-256 of the tensors (:func:`tensors_sha256`) that nddr writes."""


def is_safetensors(path: PathLike) -> bool:
    """Whether ``path`` is a safetensors file, by content (its header), whatever its suffix.

    A safetensors file starts with the byte length of its JSON header (little-endian u64), then
    the header, which opens with ``{``. A file named ``.safetensors`` counts too, so that a
    damaged one is reported as a damaged safetensors file.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as handle:
            start = handle.read(9)
        size = path.stat().st_size
    except OSError:
        return False
    return (
        len(start) == 9
        and start[8:] == b"{"
        and 2 <= int.from_bytes(start[:8], "little") <= size - 8
    )


def load_state_dict(path: PathLike) -> dict[str, Tensor]:
    """Read a state dict from a safetensors or a torch file, never executing pickled code.

    The format is told by content, not by suffix. Torch files go through
    ``torch.load(weights_only=True)``; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is
    unwrapped. A file that nddr wrote is checked against the checksum of its tensors, and every
    file must hold finite values: a corrupt file is refused rather than giving NaN results.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not found"
        raise NddrError(
            f"weights file {path} is {what}: pass the path of a .safetensors or .pth file"
        )
    state = _load_safetensors(path) if is_safetensors(path) else _load_torch(path)
    _check_finite(state, path)
    return state


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            checksum = (handle.metadata() or {}).get(CHECKSUM_KEY)
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise NddrError(
            f"weights file {path} is not a readable safetensors file ({_first_line(error)})"
        ) from None
    if checksum is not None and checksum != tensors_sha256(state):
        raise NddrError(
            f"weights file {path} is corrupt: its tensors do not match the checksum saved with "
            "them (changed on disk after it was written); use an intact copy or save it again"
        )
    return state


def _load_torch(path: Path) -> dict[str, Tensor]:
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


def _check_finite(state: Mapping[str, Tensor], path: Path) -> None:
    for key, value in state.items():
        if (value.is_floating_point() or value.is_complex()) and not torch.isfinite(value).all():
            raise NddrError(
                f"weights file {path}: tensor {key!r} holds NaN or Inf values (a corrupt file, or "
                "saved from a diverged run); use another file"
            )


def tensors_sha256(state: Mapping[str, Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``state``'s tensors, in name order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{value.dtype}|{list(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def describe_mismatch(
    state: Mapping[str, Tensor], target: Mapping[str, Tensor], required: Iterable[str] | None = None
) -> str:
    """What keeps ``state`` from loading into a module whose state dict is ``target``: its
    missing (of ``required``, default all of ``target``), unexpected and misshaped keys, each as
    :func:`~nddr.errors.describe_keys`; empty when it fits."""
    missing = sorted(set(target if required is None else required) - set(state))
    unexpected = sorted(set(state) - set(target))
    misshaped = sorted(
        f"{key} {list(state[key].shape)} vs {list(target[key].shape)}"
        for key in set(state) & set(target)
        if state[key].shape != target[key].shape
    )
    return "; ".join(
        f"{label} {describe_keys(keys)}"
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", misshaped),
        )
        if keys
    )


def read_metadata(path: PathLike) -> dict[str, object]:
    """The JSON metadata saved beside the tensors of a safetensors file (empty if none).

    Values that are not JSON (written by other tools) stay strings; nddr's own keys
    (``nddr_*``) must be valid JSON. The tensors' checksum is left out.
    """
    if not is_safetensors(path):
        raise NddrError(
            f"weights file {path} is not a readable safetensors file (a torch file, which carries "
            "no nddr metadata): pass a file written by nddr"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise NddrError(
            f"weights file {path} is not a readable safetensors file ({_first_line(error)})"
        ) from None
    return {
        key: _decode_metadata(path, key, value)
        for key, value in metadata.items()
        if key != CHECKSUM_KEY
    }


def _decode_metadata(path: PathLike, key: str, value: str) -> object:
    try:
        return json.loads(value)
    except ValueError as error:
        if not key.startswith("nddr_"):
            return value
        raise NddrError(
            f"weights file {path}: metadata {key!r} is not valid JSON ({_first_line(error)}); "
            "it was edited or damaged: save the file again with nddr"
        ) from None


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
    JSON, with the tensors' checksum that :func:`load_state_dict` verifies. Tensors are made
    contiguous and moved to the CPU first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    encoded = {key: json.dumps(value) for key, value in (metadata or {}).items()}
    encoded[CHECKSUM_KEY] = tensors_sha256(tensors)
    with atomic_write(path) as temporary:
        save_file(tensors, temporary, metadata=encoded)
    return path


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
