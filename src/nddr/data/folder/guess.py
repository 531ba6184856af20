"""A starting ``dataset.yaml`` guessed from a folder's contents (``nddr data init DIR``).

The image folder is ``images/`` (or ``image``, ``rgb``, ``img``; else the folder with the most
JPEGs). Every other folder whose files carry the images' stems becomes a task, its kind told
from a few of its files: one 8-bit channel is segmentation (classes: the largest label + 1,
255 ignored), one 8-bit channel of 0 and 255 (or 0 and 1) only is a saliency mask, one 16-bit channel is
depth in millimetres, 8- or 16-bit RGB whose values decode to unit vectors is normals, float
``.npy`` of 3 channels normals and of one channel depth in metres. A CSV with a ``stem`` column
gives one image-level task per other column: classification for integers or names, regression
for other numbers. Splits are
``train.txt`` / ``test.txt`` (in the root or ``splits/``), ``train/`` and ``test/`` below the
image folder, or else a seeded 20% test fraction. Each guess is said in one line.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nddr.data.conventions import IGNORE_INDEX, TargetKind
from nddr.data.files import _open, read_npy
from nddr.data.folder.manifest import STEM, Manifest, parse_manifest
from nddr.data.folder.readers import PNG16_FULL_SCALE, png_bit_depth, read_rgb16_png
from nddr.data.folder.splits import SPLIT_FOLDER, find_images
from nddr.data.folder.table import STEM_COLUMN
from nddr.data.image_file import SIXTEEN_BIT_MODES
from nddr.errors import NddrError

IMAGE_FOLDERS = ("images", "image", "rgb", "img")
"""Folder names taken as the image folder, in this order."""

DEFAULT_TEST_FRACTION = 0.2
"""The test share of a guessed fraction split."""

FILES_LOOKED_AT = 8
"""Files of each folder opened to tell its kind (evenly spread over its files)."""

UNIT_SHARE = 0.9
"""Share of decoded pixels within 10% of unit length for RGB files to count as normals."""

MILLIMETRES = 0.001
"""The scale guessed for 16-bit depth: metres per millimetre, the common unit of such files."""


@dataclass(frozen=True)
class Guess:
    """A guessed manifest and one line per guess (what was found and what was concluded)."""

    manifest: Manifest
    notes: list[str]


def guess_manifest(root: Path) -> Guess:
    """The manifest that ``root``'s contents suggest, and the notes saying why."""
    if not root.is_dir():
        raise NddrError(f"dataset folder {str(root)!r} is not a directory: pass the data root")
    folders = [
        path
        for path in sorted(root.iterdir())
        if path.is_dir() and not path.name.startswith(".") and path.name != SPLIT_FOLDER
    ]
    image_folder = _image_folder(root, folders)
    images = find_images(image_folder)
    if not images:
        raise NddrError(f"image folder {str(image_folder)!r} holds no image file: add images")
    notes = [f"images: {image_folder.name}/ ({len(images)} images)"]
    tasks: dict[str, dict[str, Any]] = {}
    for folder in folders:
        if folder != image_folder:
            task, note = _folder_task(root, folder, images)
            notes.append(note)
            if task is not None:
                tasks[folder.name] = task
    table, table_tasks, table_notes = _table_tasks(root, images)
    notes += table_notes
    for name, task in table_tasks.items():
        tasks[name if name not in tasks else f"{name}_label"] = task
    if not tasks:
        raise NddrError(
            f"no task found in {str(root)!r}: put each task's files in a folder named as the "
            f"images ({image_folder.name}/0001.jpg -> labels/0001.png) or a CSV with a "
            f"{STEM_COLUMN!r} column"
        )
    splits, split_note = _splits(root, image_folder)
    notes.append(split_note)
    data: dict[str, Any] = {"images": image_folder.name, "tasks": tasks, "splits": splits}
    if table is not None:
        data["table"] = table
    return Guess(parse_manifest(data, "guessed manifest"), notes)


def _image_folder(root: Path, folders: list[Path]) -> Path:
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    jpegs = {
        folder: sum(1 for path in folder.rglob("*") if path.suffix.lower() in (".jpg", ".jpeg"))
        for folder in folders
    }
    if jpegs and max(jpegs.values()) > 0:
        return max(jpegs, key=jpegs.get)
    raise NddrError(
        f"no image folder in {str(root)!r}: put the RGB images in {str(root / 'images')!r}"
    )


def _folder_task(
    root: Path, folder: Path, images: dict[str, Path]
) -> tuple[dict[str, Any] | None, str]:
    """The task the files of ``folder`` look like, or None, and the note saying so."""
    by_suffix: Counter[str] = Counter()
    matched: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        stem = path.relative_to(folder).with_suffix("").as_posix()
        if path.is_file() and stem in images:
            by_suffix[path.suffix] += 1
            matched.setdefault(path.suffix, []).append(path)
    if not by_suffix:
        return None, f"skipped {folder.name}/: no file has an image's stem"
    suffix, count = by_suffix.most_common(1)[0]
    files = matched[suffix]
    spread = np.linspace(0, len(files) - 1, min(FILES_LOOKED_AT, len(files))).round()
    looked_at = [files[int(k)] for k in spread]
    pattern = f"{folder.relative_to(root).as_posix()}/{STEM}{suffix}"
    coverage = f"{count} of {len(images)} images"
    try:
        task, finding = _kind(looked_at, suffix)
    except NddrError as error:
        return None, f"skipped {folder.name}/: {error}"
    if task is None:
        return None, f"skipped {folder.name}/: {finding}"
    return {**task, "file": pattern}, f"{folder.name}: {pattern} ({coverage}), {finding}"


def _kind(files: list[Path], suffix: str) -> tuple[dict[str, Any] | None, str]:
    if suffix.lower() == ".npy":
        return _npy_kind([read_npy(path) for path in files])
    modes = {_open(path).mode for path in files}
    if len(modes) > 1:
        return None, f"files of several modes ({', '.join(sorted(modes))})"
    mode = modes.pop()
    if mode in ("L", "P"):
        return _label_kind([np.asarray(_open(path)) for path in files])
    if mode in SIXTEEN_BIT_MODES:
        largest = max(int(np.asarray(_open(path)).max()) for path in files)
        task = {"kind": TargetKind.DEPTH, "encoding": "png16", "scale": MILLIMETRES}
        return (
            task,
            f"one 16-bit channel, values up to {largest}: depth in millimetres (scale {MILLIMETRES})",
        )
    if mode == "RGB" and all(png_bit_depth(path) == 16 for path in files):
        return _normals_kind([read_rgb16_png(path) for path in files], "png16")
    if mode == "RGB":
        return _normals_kind([np.asarray(_open(path)) for path in files], "png8")
    return None, f"mode {mode} is not a target kind (one channel of labels or depth, RGB normals)"


def _npy_kind(arrays: list[np.ndarray]) -> tuple[dict[str, Any] | None, str]:
    shapes = {array.shape[2:] for array in arrays}
    floats = all(array.dtype.kind == "f" for array in arrays)
    if floats and shapes == {(3,)}:
        return {"kind": TargetKind.NORMALS, "encoding": "npy"}, "float (H, W, 3): normals"
    if floats and shapes <= {(), (1,)}:
        largest = max(float(np.nanmax(array)) if array.size else 0.0 for array in arrays)
        return {"kind": TargetKind.DEPTH, "encoding": "npy"}, (
            f"float (H, W), values up to {largest:.3g}: depth in metres"
        )
    kinds = ", ".join(sorted({f"{array.dtype.name} {array.shape}" for array in arrays}))
    return None, f".npy of {kinds}: not float normals (H, W, 3) or depth (H, W)"


def _label_kind(arrays: list[np.ndarray]) -> tuple[dict[str, Any] | None, str]:
    values = np.unique(np.concatenate([array.ravel() for array in arrays]))
    if set(values.tolist()) in ({0, 255}, {0, 1}):
        threshold = int(values.max())
        task = {"kind": TargetKind.SALIENCY, "threshold": threshold}
        return task, (
            f"one 8-bit channel of 0 and {threshold} only: a saliency mask (for two-class "
            "segmentation set kind: segmentation, classes: 2)"
        )
    labels = values[values != IGNORE_INDEX]
    if not labels.size:
        return None, f"every pixel looked at is {IGNORE_INDEX}"
    classes = int(labels.max()) + 1
    ignored = f", {IGNORE_INDEX} ignored" if IGNORE_INDEX in values else ""
    finding = (
        f"one 8-bit channel, labels {int(labels.min())}..{classes - 1}{ignored}: "
        f"segmentation with {classes} classes (from {len(arrays)} files: check classes)"
    )
    return {"kind": TargetKind.SEGMENTATION, "classes": classes}, finding


def _normals_kind(arrays: list[np.ndarray], encoding: str) -> tuple[dict[str, Any] | None, str]:
    full_scale = PNG16_FULL_SCALE if encoding == "png16" else 255
    bits = 16 if encoding == "png16" else 8
    pixels = np.concatenate([array.reshape(-1, 3) for array in arrays])
    invalid = _invalid_colour(pixels, full_scale)
    valid = pixels[~np.all(pixels == invalid, axis=1)]
    length = np.linalg.norm(valid / (full_scale / 2) - 1, axis=1)
    share = float(np.mean(np.abs(length - 1) < 0.1)) if len(valid) else 0.0
    if share < UNIT_SHARE:
        return None, (
            f"{bits}-bit RGB, but {100 * share:.0f}% of pixels decode to unit normals "
            f"((n + 1) / 2 x {full_scale}): not normals"
        )
    task = {"kind": TargetKind.NORMALS, "encoding": encoding, "invalid": list(invalid)}
    return task, f"{bits}-bit RGB of unit normals (n + 1) / 2 x {full_scale}, invalid {invalid}"


def _invalid_colour(pixels: np.ndarray, full_scale: int) -> tuple[int, int, int]:
    """(0, 0, 0) unless only the paper's (full, full, full) appears."""
    full = np.all(pixels == full_scale, axis=1).any()
    black = np.all(pixels == 0, axis=1).any()
    return (full_scale,) * 3 if full and not black else (0, 0, 0)


def _table_tasks(
    root: Path, images: dict[str, Path]
) -> tuple[str | None, dict[str, dict[str, Any]], list[str]]:
    """The CSV with a ``stem`` column (the first, by name) and one task per other column."""
    for path in sorted(root.glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or STEM_COLUMN not in rows[0]:
            continue
        notes = []
        tasks = {}
        known = sum(row[STEM_COLUMN] in images for row in rows)
        notes.append(f"table: {path.name} ({known} of {len(rows)} rows name an image)")
        for column in rows[0]:
            if column == STEM_COLUMN:
                continue
            task, note = _column_task([row[column] for row in rows])
            notes.append(f"{column}: column of {path.name}, {note}")
            if task is not None:
                tasks[column] = task
        return path.name, tasks, notes
    return None, {}, []


def _column_task(values: list[str]) -> tuple[dict[str, Any] | None, str]:
    values = [value.strip() for value in values]
    try:
        numbers = [int(value) for value in values]
    except ValueError:
        numbers = None
    if numbers is not None and min(numbers) >= 0:
        classes = max(numbers) + 1
        task = {"kind": TargetKind.CLASSIFICATION, "classes": classes}
        return task, f"integers 0..{classes - 1}: classification with {classes} classes"
    names = sorted(set(values))
    if numbers is None and len(names) <= IGNORE_INDEX and not _numeric(values):
        task = {"kind": TargetKind.CLASSIFICATION, "classes": len(names), "class_names": names}
        return task, f"{len(names)} names: classification, classes in name order"
    if _numeric(values):
        return {"kind": TargetKind.REGRESSION}, "real numbers: regression"
    return None, "neither class indices, class names nor numbers"


def _numeric(values: list[str]) -> bool:
    try:
        [float(value) for value in values]
    except ValueError:
        return False
    return True


def _splits(root: Path, image_folder: Path) -> tuple[dict[str, Any], str]:
    for folder in (root, root / SPLIT_FOLDER):
        lists = [folder / "train.txt", folder / "test.txt"]
        if all(path.is_file() for path in lists):
            names = [path.relative_to(root).as_posix() for path in lists]
            return {"train": names[0], "test": names[1]}, f"splits: lists {', '.join(names)}"
    if (image_folder / "train").is_dir() and (image_folder / "test").is_dir():
        names = [f"{image_folder.name}/{split}" for split in ("train", "test")]
        return {"train": names[0], "test": names[1]}, f"splits: folders {', '.join(names)}"
    return {"test_fraction": DEFAULT_TEST_FRACTION, "seed": 0}, (
        f"splits: no lists or train/test folders; {100 * DEFAULT_TEST_FRACTION:.0f}% of the "
        f"images to test, seeded, written to {SPLIT_FOLDER}/ when first read"
    )


__all__ = ["Guess", "guess_manifest"]
