"""PASCAL-Context multi-task: 21-class semantic segmentation, human parts, saliency and surface
normals on the PASCAL VOC 2010 images (4,998 train, 5,105 val), read from the PASCAL_MT layout
of Maninis et al. ("Attentive Single-Tasking of Multiple Tasks", CVPR 2019) as Vandenhende et
al. ("Multi-Task Learning for Dense Prediction Tasks: A Survey", TPAMI 2021) use it::

    root/JPEGImages/{name}.jpg              RGB
    root/semseg/pascal-context/{name}.png   uint8 0 = background, 1..20 = VOC classes, 255 = void
    root/human_parts/{name}.mat             the Pascal-Part ``anno`` struct (below)
    root/sal_distill/{name}.png             8-bit grey saliency, salient where > 127.5
    root/normals_distill/{name}.png         8-bit RGB normals e = (n + 1) / 2 x 255
    root/ImageSets/Context/train.txt        one name per line; the "test" split reads val.txt
    root/ImageSets/Context/val.txt

Targets are those whose folder exists. **Human parts**: ``anno.objects`` lists each object with
its ``class`` and its ``parts`` (``part_name``, ``mask``); the parts of every ``person`` are painted
into 7 classes (:data:`PART_GROUPS`, the grouping of Pascal-Part's 24 person parts that ASTMT and
Vandenhende et al. use), the rest of the image is background. An image without a person with
annotated parts has every pixel :data:`~nddr.data.conventions.IGNORE_INDEX`, so the task's loss
and metric skip it, as the peers skip such images. The peers' loaders (ASTMT, Vandenhende et al.)
require a ``.mat`` for every split image (an image without a person has one listing its other
objects); this reader reads a split image whose ``.mat`` is absent as one without a person, not as
an error, and counts it in ``stats["human_parts_without_mat"]`` (``nddr data check`` shows it), so
an incomplete folder is visible rather than silently smaller. **Saliency** is thresholded at 127.5, as the peers do (their
``v / 255 > 0.5``). **Normals** are decoded as n = 2 e / 255 - 1 and L2-normalised; they were
distilled from a network trained on NYUD, so their axes are NYUD-MT's, which nddr takes as
stored (:mod:`nddr.data.nyuv2`); x is horizontal (the peers' flip negates it). The peers further
mark invalid every pixel whose full PASCAL-Context class (``pascal-context/trainval/*.mat``) has no
NYUD counterpart; this reader keeps every pixel. **Edges** are left out: the peers score them
with odsF from the external MATLAB SEISM benchmark, which nddr cannot run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from PIL import Image
from scipy.io.matlab import MatReadError

from nddr.data.base import IGNORE_INDEX, MultiTaskDataset, RawSample, TargetSpec, Transform
from nddr.data.files import (
    check_target_size,
    list_folder,
    read_image,
    read_label_png,
    read_name_list,
    read_rgb_png,
    require_dir,
)
from nddr.data.nyuv2 import normalise_normals
from nddr.errors import NddrError
from nddr.io import PathLike

SEMSEG_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
"""The 21 classes of the semantic segmentation, in label order (PASCAL VOC's)."""

PART_GROUPS: dict[str, tuple[str, ...]] = {
    "background": (),
    "head": (
        "head",
        "hair",
        "lear",
        "rear",
        "lebrow",
        "rebrow",
        "leye",
        "reye",
        "mouth",
        "nose",
    ),
    "torso": ("torso", "neck"),
    "upper arm": ("luarm", "ruarm"),
    "lower arm": ("llarm", "rlarm", "lhand", "rhand"),
    "upper leg": ("luleg", "ruleg"),
    "lower leg": ("llleg", "rlleg", "lfoot", "rfoot"),
}
"""The 7 human-part classes, in label order, and the Pascal-Part person parts each gathers."""

PART_CLASSES = tuple(PART_GROUPS)
PART_LABEL = {part: label for label, parts in enumerate(PART_GROUPS.values()) for part in parts}
"""Pascal-Part person part name -> human-part class label."""

PERSON = "person"
"""The Pascal-Part object class whose parts are the human parts."""

SALIENCY_THRESHOLD = 127.5
"""8-bit saliency above this is salient."""

LISTS = {"train": "train.txt", "test": "val.txt"}
"""File in ``ImageSets/Context/`` of each split."""

FOLDERS = {
    "semseg": "semseg/pascal-context",
    "human_parts": "human_parts",
    "saliency": "sal_distill",
    "normals": "normals_distill",
}
"""Folder (relative to the root) of each target."""

SUFFIX = {"semseg": ".png", "human_parts": ".mat", "saliency": ".png", "normals": ".png"}

TARGETS = {
    "semseg": TargetSpec("segmentation", len(SEMSEG_CLASSES), SEMSEG_CLASSES),
    "human_parts": TargetSpec("segmentation", len(PART_CLASSES), PART_CLASSES),
    "saliency": TargetSpec("saliency"),
    "normals": TargetSpec("normals"),
}
"""Every target the layout can hold, in the peers' order."""


@dataclass
class _Sample:
    name: str
    image: Path
    files: dict[str, Path | None] = field(default_factory=dict)


class PascalContext(MultiTaskDataset):
    """PASCAL-Context multi-task from a PASCAL_MT folder (see the module docstring).

    ``split`` is ``"train"`` (``train.txt``) or ``"test"`` (``val.txt``, the split the peers
    report); ``tasks`` keeps only those targets (default: every target the folder has).
    ``size`` resizes every sample to ``size`` x ``size`` as it loads, as the peers train and
    evaluate at 512 x 512 (PASCAL images are at most 500 px a side, many far less: a fixed crop
    would otherwise be mostly padding); the image bilinearly, the targets by nearest neighbour,
    so labels stay labels and normals stay unit. ``names[i]`` names sample ``i``; ``stats``
    counts the images without a human-parts file.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
        *,
        size: int | None = None,
    ) -> None:
        super().__init__(transform)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise NddrError(
                f"PASCAL-Context option size = {size!r} is not valid: give a side in pixels "
                "(e.g. 512, the peers' resolution) or null to keep each image's own size"
            )
        self.size = size
        self.root = require_dir(
            root, "PASCAL-Context root", "pass the PASCAL_MT folder (JPEGImages/, ImageSets/ ...)"
        )
        self.check_split(split)
        self.split = split
        present = [name for name, folder in FOLDERS.items() if (self.root / folder).is_dir()]
        if not present:
            wanted = ", ".join(f + "/" for f in FOLDERS.values())
            raise NddrError(
                f"PASCAL-Context in {str(self.root)!r} has none of the target folders {wanted}: "
                "nothing to train on"
            )
        for name in tasks or []:
            if name in FOLDERS and name not in present:
                raise NddrError(
                    f"PASCAL-Context in {str(self.root)!r} has no {name} target: there is no "
                    f"{FOLDERS[name]}/ folder; choose from {', '.join(present)}"
                )
        self.targets = {name: TARGETS[name] for name in present}
        self.select_targets(tasks)
        self._samples = _index(self.root, split, list(self.targets))
        without = sum(sample.files.get("human_parts", 0) is None for sample in self._samples)
        self.stats: dict[str, Any] = (
            {"human_parts_without_mat": without} if "human_parts" in self.targets else {}
        )

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def names(self) -> list[str]:
        return [sample.name for sample in self._samples]

    def source(self, index: int) -> str:
        sample = self._samples[index]
        parts = [f"image {str(sample.image)!r}"]
        parts += [f"{name} {str(path)!r}" for name, path in sample.files.items() if path]
        return "PASCAL-Context sample " + ", ".join(parts)

    def load_raw(self, index: int) -> RawSample:
        sample = self._samples[index]
        image = read_image(sample.image)
        raw: RawSample = {"image": image}
        for name in self.targets:
            path = sample.files[name]
            value = None if path is None else _READERS[name](path)
            if value is None:  # human parts of an image without a person: all ignored
                raw[name] = np.full(image.shape[:2], IGNORE_INDEX, dtype=np.uint8)
                continue
            check_target_size(name, path, value, sample.image, image)
            raw[name] = value
        return resize_sample(raw, self.size) if self.size else raw


def resize_sample(sample: RawSample, size: int) -> RawSample:
    """A raw sample at ``size`` x ``size``: the image bilinear (antialiased, PIL), every target
    by nearest neighbour (the source pixel under each output pixel's centre)."""
    height, width = sample["image"].shape[:2]
    rows = np.minimum(((np.arange(size) + 0.5) * height / size).astype(np.intp), height - 1)
    cols = np.minimum(((np.arange(size) + 0.5) * width / size).astype(np.intp), width - 1)
    resized: RawSample = {}
    for key, value in sample.items():
        if key == "image":
            resized[key] = np.asarray(Image.fromarray(value).resize((size, size), Image.BILINEAR))
        else:
            resized[key] = np.ascontiguousarray(value[rows[:, None], cols[None, :]])
    return resized


def _index(root: Path, split: str, targets: list[str]) -> list[_Sample]:
    path = root / "ImageSets" / "Context" / LISTS[split]
    if not path.is_file():
        raise NddrError(
            f"PASCAL-Context {split} split list {str(path)!r} does not exist: the PASCAL_MT "
            "layout has ImageSets/Context/train.txt and val.txt"
        )
    names = read_name_list(path)
    images = list_folder(root / "JPEGImages") if (root / "JPEGImages").is_dir() else set()
    contents = {target: list_folder(root / FOLDERS[target]) for target in targets}
    samples = []
    for name, number in names:
        if name + ".jpg" not in images:
            raise NddrError(
                f"image {str(root / 'JPEGImages' / (name + '.jpg'))!r} of {name!r} "
                f"({path}:{number}) does not exist; remove {name!r} from the list"
            )
        sample = _Sample(name, root / "JPEGImages" / (name + ".jpg"))
        for target in targets:
            file = name + SUFFIX[target]
            folder = root / FOLDERS[target]
            if file in contents[target]:
                sample.files[target] = folder / file
            elif target == "human_parts":
                sample.files[target] = None  # no Pascal-Part file: no person
            else:
                raise NddrError(
                    f"{target} file {str(folder / file)!r} of {name!r} ({path}:{number}) does not "
                    f"exist; restore it, or choose other tasks (data.tasks) to skip {target}"
                )
        samples.append(sample)
    return samples


def read_semseg(path: PathLike) -> np.ndarray:
    """A PASCAL_MT segmentation PNG (0..20, 255 = void) as uint8 labels, checked."""
    labels = read_label_png(path)
    bad = (labels >= len(SEMSEG_CLASSES)) & (labels != IGNORE_INDEX)
    if bad.any():
        raise NddrError(
            f"semseg file {str(path)!r} has label {int(labels[bad][0])}: PASCAL-Context's 21 "
            f"classes are 0..{len(SEMSEG_CLASSES) - 1} and {IGNORE_INDEX} = void"
        )
    return np.ascontiguousarray(labels, dtype=np.uint8)


def read_saliency(path: PathLike) -> np.ndarray:
    """An 8-bit saliency PNG as a uint8 mask: 1 where the value exceeds 127.5, else 0."""
    return (read_label_png(path) > SALIENCY_THRESHOLD).astype(np.uint8)


def read_normals(path: PathLike) -> np.ndarray:
    """An 8-bit normals PNG as unit float32 (H, W, 3) normals (n = 2 e / 255 - 1, normalised)."""
    encoded = read_rgb_png(path)
    return normalise_normals(2.0 * encoded.astype(np.float32) / 255.0 - 1.0, f"normals file {path}")


def read_human_parts(path: PathLike) -> np.ndarray | None:
    """A Pascal-Part ``.mat`` as uint8 (H, W) human-part labels (:data:`PART_CLASSES`): the
    parts of every person, background elsewhere; ``None`` without a person with annotated
    parts (the image's pixels are then all ignored)."""
    try:
        anno = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["anno"]
        objects = np.atleast_1d(anno.objects)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, MatReadError) as error:
        raise NddrError(
            f"human_parts file {str(path)!r} is not a Pascal-Part annotation (a .mat holding "
            f"anno.objects; {type(error).__name__}: {error})"
        ) from None
    labels: np.ndarray | None = None
    for person in (obj for obj in objects if str(getattr(obj, "class", "")) == PERSON):
        for part in np.atleast_1d(getattr(person, "parts", [])):
            name = str(getattr(part, "part_name", ""))
            if name not in PART_LABEL:
                raise NddrError(
                    f"human_parts file {str(path)!r} has a person part {name!r} that is no "
                    f"Pascal-Part person part ({', '.join(sorted(PART_LABEL))})"
                )
            mask = np.asarray(part.mask).astype(bool)
            if labels is None:
                labels = np.zeros(mask.shape, dtype=np.uint8)
            if mask.shape != labels.shape:
                raise NddrError(
                    f"human_parts file {str(path)!r} has part masks of shapes {labels.shape} "
                    f"and {mask.shape}: every mask must be the image's size"
                )
            labels[mask] = PART_LABEL[name]
    return labels


_READERS: dict[str, Callable[[Path], np.ndarray | None]] = {
    "semseg": read_semseg,
    "human_parts": read_human_parts,
    "saliency": read_saliency,
    "normals": read_normals,
}
