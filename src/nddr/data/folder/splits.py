"""Which images are in the train and test splits of a ``folder`` dataset.

A split is a list file (one stem per line), a folder below the image folder, or, with
``test_fraction``, a seeded permutation written to ``<root>/splits/{train,test}.txt`` the first
time and read from there afterwards, so that it never changes: not with another seed, not when
images are added (a changed image set is an error, never a silent re-split).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from nddr.data.folder.manifest import Splits
from nddr.data.image_file import IMAGE_SUFFIXES
from nddr.errors import NddrError
from nddr.io import atomic_write

SPLIT_FOLDER = "splits"
"""Where a fraction split is written, below the dataset root."""

SplitEntry = tuple[str, str]
"""A stem and where the split names it (``list.txt:3`` or the split's folder)."""


def find_images(folder: Path) -> dict[str, Path]:
    """The image files below ``folder`` by stem: their path below it without the suffix.

    Hidden files and folders are left out; two images with one stem are an error.
    """
    if not folder.is_dir():
        raise NddrError(
            f"image folder {str(folder)!r} is not a directory: set images in the manifest"
        )
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        stem = relative.with_suffix("").as_posix()
        if stem in found:
            raise NddrError(
                f"images {str(found[stem])!r} and {str(path)!r} have one stem {stem!r}: "
                "keep one of them"
            )
        found[stem] = path
    return found


def split_entries(
    root: Path, image_folder: Path, images: dict[str, Path], splits: Splits, split: str
) -> list[SplitEntry]:
    """The stems of ``split`` in order, each with where the split names it."""
    if splits.test_fraction is not None:
        lists = fraction_split(root, images, splits.test_fraction, splits.seed)
        return read_list(lists[split])
    entries = {
        name: _entries(root / path, image_folder, images, name)
        for name, path in (("train", splits.train), ("test", splits.test))
    }
    _check_disjoint(entries["train"], entries["test"])
    return entries[split]


def fraction_split(
    root: Path, images: dict[str, Path], test_fraction: float, seed: int
) -> dict[str, Path]:
    """The list files of a fraction split, written now if ``splits/`` holds neither.

    Written: a ``seed``-ed permutation of the sorted stems puts round(fraction x N) of them (at
    least one, and one fewer than N at most) in test. Read: the lists must name exactly the
    images there are now.
    """
    lists = {name: root / SPLIT_FOLDER / f"{name}.txt" for name in ("train", "test")}
    present = [path for path in lists.values() if path.is_file()]
    if len(present) == 1:
        other = next(path for path in lists.values() if path not in present)
        raise NddrError(
            f"split list {str(present[0])!r} exists without {str(other)!r}: delete "
            f"{SPLIT_FOLDER}/ to split again"
        )
    if present:
        train, test = (read_list(path) for path in lists.values())
        _check_disjoint(train, test)
        _check_unchanged(lists, {stem for stem, _ in train + test}, set(images))
        return lists
    stems = sorted(images)
    if len(stems) < 2:
        raise NddrError(f"a fraction split needs at least 2 images, found {len(stems)}: add images")
    count = min(max(round(test_fraction * len(stems)), 1), len(stems) - 1)
    order = np.random.default_rng(seed).permutation(len(stems))
    chosen = set(order[:count].tolist())
    for name, path in lists.items():
        selected = [stem for k, stem in enumerate(stems) if (k in chosen) == (name == "test")]
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as temp:
            Path(temp).write_text("".join(f"{stem}\n" for stem in selected), encoding="utf-8")
    return lists


def read_list(path: Path) -> list[SplitEntry]:
    """The stems of a list file (one per line; an image suffix is tolerated), with their line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise NddrError(f"split list {str(path)!r} cannot be read as text ({error})") from None
    entries: list[SplitEntry] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        stem = line.strip()
        if not stem:
            continue
        if PurePosixPath(stem).suffix.lower() in IMAGE_SUFFIXES:
            stem = str(PurePosixPath(stem).with_suffix(""))
        if stem in seen:
            raise NddrError(
                f"{path}:{number}: {stem!r} is listed twice (first on line {seen[stem]})"
            )
        seen[stem] = number
        entries.append((stem, f"{path}:{number}"))
    return entries


def _entries(
    path: Path, image_folder: Path, images: dict[str, Path], split: str
) -> list[SplitEntry]:
    if path.is_file():
        return read_list(path)
    if path.is_dir():
        if not path.resolve().is_relative_to(image_folder.resolve()):
            raise NddrError(
                f"{split} split folder {str(path)!r} is not below the image folder "
                f"{str(image_folder)!r}: name a folder of images there, or a list file"
            )
        below = path.resolve().relative_to(image_folder.resolve()).as_posix()
        prefix = "" if below == "." else f"{below}/"
        return [(stem, str(path)) for stem in images if stem.startswith(prefix)]
    raise NddrError(
        f"{split} split {str(path)!r} does not exist: name a list file of stems or a folder "
        "of images in the manifest's splits"
    )


def _check_disjoint(train: list[SplitEntry], test: list[SplitEntry]) -> None:
    train_stems = {stem: where for stem, where in train}
    for stem, where in test:
        if stem in train_stems:
            raise NddrError(
                f"splits overlap: {stem!r} is in train ({train_stems[stem]}) and test ({where}); "
                "train and test must be disjoint"
            )


def _check_unchanged(lists: dict[str, Path], listed: set[str], present: set[str]) -> None:
    new, gone = sorted(present - listed), sorted(listed - present)
    if not new and not gone:
        return
    changes = []
    if new:
        changes.append(f"{len(new)} new, e.g. {new[0]!r}")
    if gone:
        changes.append(f"{len(gone)} gone, e.g. {gone[0]!r}")
    raise NddrError(
        f"the images changed since {str(lists['train'])!r} and {str(lists['test'])!r} were "
        f"written ({'; '.join(changes)}): delete {SPLIT_FOLDER}/ to split again, or edit the lists"
    )


__all__ = [
    "SPLIT_FOLDER",
    "SplitEntry",
    "find_images",
    "fraction_split",
    "read_list",
    "split_entries",
]
