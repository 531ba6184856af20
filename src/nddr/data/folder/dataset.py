"""``Folder``: a user's own images and targets, described by the ``dataset.yaml`` in its root."""

from __future__ import annotations

from pathlib import Path

from nddr.data.base import MultiTaskDataset, RawSample, TargetSpec, Transform
from nddr.data.conventions import TargetKind
from nddr.data.files import check_target_size, read_image, require_dir, require_file
from nddr.data.folder.manifest import MANIFEST_NAME, STEM, load_manifest
from nddr.data.folder.readers import DENSE_READERS
from nddr.data.folder.splits import find_images, split_entries
from nddr.data.folder.table import Table, read_table
from nddr.errors import NddrError
from nddr.io import PathLike


class Folder(MultiTaskDataset):
    """The images below the manifest's image folder with one target per manifest task.

    ``split`` selects the manifest's train or test split; ``tasks`` keeps only those tasks;
    ``manifest`` names the manifest file in ``root``. A missing or bad file is found when its
    sample is read, so that ``nddr data check`` lists every bad sample with its path.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
        *,
        manifest: str = MANIFEST_NAME,
    ) -> None:
        super().__init__(transform)
        self.check_split(split)
        self.split = split
        self.root = require_dir(root, "folder dataset root", "pass the folder holding dataset.yaml")
        self.manifest_path = self.root / manifest
        self.manifest = load_manifest(self.manifest_path)
        self.targets = {
            name: TargetSpec(task.kind, getattr(task, "classes", None), _names(task))
            for name, task in self.manifest.tasks.items()
        }
        self.select_targets(tasks)
        self.image_folder = self.root / self.manifest.images
        self._images = find_images(self.image_folder)
        self._entries = split_entries(
            self.root, self.image_folder, self._images, self.manifest.splits, split
        )
        self._columns = {
            name: task.column or name
            for name, task in self.manifest.tasks.items()
            if name in self.targets and not task.kind.dense
        }
        self._table: Table | None = None
        if self._columns:
            self._table = read_table(
                self.root / str(self.manifest.table), list(self._columns.values())
            )
        self.stats = {"manifest": str(self.manifest_path), "images": len(self._images)}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def stems(self) -> list[str]:
        """The stem of each sample, in order."""
        return [stem for stem, _ in self._entries]

    def target_file(self, name: str, stem: str) -> Path:
        """The file of dense task ``name`` for the image ``stem``."""
        return self.root / self.manifest.tasks[name].file.replace(STEM, stem)

    def source(self, index: int) -> str:
        stem, where = self._entries[index]
        image = self._images.get(stem)
        parts = [f"image {str(image)!r}" if image else f"image {stem!r} (listed in {where})"]
        parts += [
            f"{name} {str(self.target_file(name, stem))!r}"
            for name in self.targets
            if name not in self._columns
        ]
        return "folder sample " + ", ".join(parts)

    def load_raw(self, index: int) -> RawSample:
        stem, where = self._entries[index]
        if stem not in self._images:
            raise NddrError(
                f"image {stem!r} listed in {where} does not exist: no image file "
                f"{self.image_folder / stem!s}.* (remove the line or add the image)"
            )
        image = read_image(self._images[stem])
        raw: RawSample = {"image": image}
        for name in self.targets:
            task = self.manifest.tasks[name]
            if task.kind == TargetKind.REGRESSION:
                raw[name] = self._table.value(stem, self._columns[name])
                continue
            if name in self._columns:
                raw[name] = self._table.label(stem, self._columns[name], task)
                continue
            path = require_file(
                self.target_file(name, stem),
                f"{name} file",
                f"the manifest's pattern {task.file!r} names it for image {stem!r}",
            )
            value = DENSE_READERS[task.kind](path, task)
            check_target_size(name, path, value, self._images[stem], image)
            raw[name] = value
        return raw


def _names(task: object) -> tuple[str, ...] | None:
    names = getattr(task, "class_names", None)
    return tuple(names) if names is not None else None


__all__ = ["Folder"]
