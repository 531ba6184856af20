"""The ``dataset.yaml`` of a ``folder`` dataset: which tasks, where their files are, the splits.

The manifest is a pydantic model with ``extra="forbid"``: an unknown key or a bad value is a
one-line :class:`~nddr.errors.NddrError` naming the key, the file and the closest valid key.
Each task's ``kind`` is a :class:`~nddr.data.conventions.TargetKind`; dense tasks name a file
pattern relative to the root in which ``{stem}`` stands for the image's path below the image
folder without its suffix (``labels/{stem}.png``); image-level tasks read a column of the CSV
``table``. Torch-free, so that ``nddr data init`` can write and check one without a model.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nddr.data.conventions import IGNORE_INDEX, TargetKind
from nddr.errors import NddrError

MANIFEST_NAME = "dataset.yaml"
"""The manifest's file name in the dataset root (``data.options.manifest`` chooses another)."""

STEM = "{stem}"
"""The placeholder of a file pattern: the image's path below the image folder, no suffix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class _DenseTarget(_Strict):
    file: str = Field(description="file pattern relative to the root, e.g. labels/{stem}.png")

    @field_validator("file")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            filled = value.format(stem="x")
        except (KeyError, IndexError, ValueError):
            filled = None
        if STEM not in value or filled is None:
            raise ValueError(
                f"a file pattern holds {STEM} and no other braces, e.g. labels/{STEM}.png"
            )
        return value


class _ClassTarget(_Strict):
    classes: int = Field(ge=1, le=IGNORE_INDEX, description="number of classes C (labels 0..C-1)")
    class_names: tuple[str, ...] | None = Field(None, description="one name per class")

    @model_validator(mode="after")
    def _names(self) -> _ClassTarget:
        if self.class_names is not None and len(self.class_names) != self.classes:
            raise ValueError(f"{len(self.class_names)} class_names for {self.classes} classes")
        return self


class SegmentationTarget(_DenseTarget, _ClassTarget):
    """Per-pixel classes in a one-channel 8-bit PNG; the stored ``ignore`` value is unlabelled."""

    kind: Literal[TargetKind.SEGMENTATION]
    ignore: int = Field(IGNORE_INDEX, ge=0, le=255, description="stored value of unlabelled pixels")


class NormalsTarget(_DenseTarget):
    """Surface normals (x right, y up, z toward the camera) in one of three encodings.

    ``png8`` / ``png16``: RGB PNG holding (n + 1) / 2 x 255 (or x 65535), as NYUv2's releases
    store them; pixels equal to ``invalid`` are invalid. ``npy``: float (H, W, 3), normalised on
    load; zero length is invalid.
    """

    kind: Literal[TargetKind.NORMALS]
    encoding: Literal["png8", "png16", "npy"]
    invalid: tuple[int, int, int] = Field(
        (0, 0, 0), description="stored RGB of invalid pixels (PNG encodings)"
    )


class DepthTarget(_DenseTarget):
    """Depth: a one-channel 16-bit PNG (``png16``) or a float ``.npy``, times ``scale`` metres."""

    kind: Literal[TargetKind.DEPTH]
    encoding: Literal["png16", "npy"]
    scale: float = Field(1.0, gt=0, description="metres per stored unit (millimetres: 0.001)")
    invalid: float = Field(0.0, description="stored value of invalid pixels")


class SaliencyTarget(_DenseTarget):
    """A binary mask in a one-channel 8-bit PNG: stored values at or above ``threshold`` are
    salient (0/255 masks: 128; 0/1 masks: 1), the stored ``ignore`` value (if any) unlabelled.
    Evaluated by max F-measure over thresholds and mIoU at 0.5 (:mod:`nddr.tasks.dense`)."""

    kind: Literal[TargetKind.SALIENCY]
    threshold: int = Field(128, ge=1, le=255, description="smallest stored salient value")
    ignore: int | None = Field(None, ge=0, le=255, description="stored value of unlabelled pixels")


class ImageLevelTarget(_ClassTarget):
    """One class (or age in years) per image, from a column of the manifest's CSV ``table``:
    integers 0..C-1, or class names when ``class_names`` are given."""

    kind: Literal[TargetKind.CLASSIFICATION, TargetKind.AGE]
    column: str | None = Field(None, description="column of the table (default: the task name)")


class RegressionTarget(_Strict):
    """One real value per image, from a column of the manifest's CSV ``table``."""

    kind: Literal[TargetKind.REGRESSION]
    column: str | None = Field(None, description="column of the table (default: the task name)")


Target = Annotated[
    SegmentationTarget
    | NormalsTarget
    | DepthTarget
    | SaliencyTarget
    | ImageLevelTarget
    | RegressionTarget,
    Field(discriminator="kind"),
]


class Splits(_Strict):
    """Either ``train`` and ``test`` (each a list file of stems, one per line, or a folder below
    the image folder), or ``test_fraction``: a seeded split written to ``splits/`` once."""

    train: str | None = None
    test: str | None = None
    test_fraction: float | None = Field(None, gt=0, lt=1)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _one_way(self) -> Splits:
        listed = self.train is not None or self.test is not None
        if listed and self.test_fraction is not None:
            raise ValueError("give either train and test, or test_fraction, not both")
        if not listed and self.test_fraction is None:
            raise ValueError("give train and test (list files or folders), or test_fraction")
        if listed and (self.train is None or self.test is None):
            raise ValueError("give both train and test")
        return self


class Manifest(_Strict):
    """A whole ``dataset.yaml``."""

    images: str = Field("images", description="folder of the RGB images, relative to the root")
    table: str | None = Field(None, description="CSV with a 'stem' column, for image-level tasks")
    tasks: dict[str, Target] = Field(min_length=1)
    splits: Splits

    @model_validator(mode="after")
    def _table_for_image_level(self) -> Manifest:
        if "image" in self.tasks:
            raise ValueError("'image' is the input, not a task name: rename the task")
        image_level = [name for name, task in self.tasks.items() if not task.kind.dense]
        if image_level and self.table is None:
            raise ValueError(f"task {image_level[0]!r} reads a column of the table: add table")
        return self


_TARGET_MODELS = (
    SegmentationTarget,
    NormalsTarget,
    DepthTarget,
    SaliencyTarget,
    ImageLevelTarget,
    RegressionTarget,
)


def _kinds(model: type[BaseModel]) -> tuple[TargetKind, ...]:
    return get_args(model.model_fields["kind"].annotation)


MANIFEST_KINDS = tuple(kind for model in _TARGET_MODELS for kind in _kinds(model))
"""The target kinds a manifest's task can have."""


def load_manifest(path: Path) -> Manifest:
    """The manifest at ``path``; a missing file, bad YAML or a bad key is a one-line error."""
    if not path.is_file():
        raise NddrError(
            f"manifest {str(path)!r} does not exist: write one with `nddr data init {path.parent}`"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise NddrError(f"manifest {str(path)!r} is not valid UTF-8 YAML{line}") from None
    return parse_manifest(data, str(path))


def parse_manifest(data: Any, where: str) -> Manifest:
    """``data`` (the YAML's content) as a :class:`Manifest`; ``where`` names it in errors."""
    if not isinstance(data, dict):
        raise NddrError(f"manifest {where!r} must hold a mapping with tasks and splits")
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        raise NddrError(f"manifest {where!r}: {_first_problem(error, data)}") from None


def dump_manifest(manifest: Manifest) -> str:
    """The manifest as YAML: the image folder, the table, each task's kind first, the splits;
    other values that are the defaults are left out."""
    data = {"images": manifest.images, **manifest.model_dump(mode="json", exclude_defaults=True)}
    data["tasks"] = {name: {"kind": task["kind"], **task} for name, task in data["tasks"].items()}
    return yaml.safe_dump(data, sort_keys=False)


def _first_problem(error: ValidationError, data: dict) -> str:
    problems = error.errors()
    # A misspelt key also makes its intended key missing: name the misspelling.
    problem = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
    location = [str(part) for part in problem["loc"]]
    if location[:1] == ["tasks"] and len(location) > 2:
        location.pop(2)  # the union member pydantic names after the task (its kind)
    key = ".".join(location)
    if problem["type"] == "extra_forbidden":
        accepted = _accepted_keys(data, location[:-1])
        close = difflib.get_close_matches(location[-1], accepted, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key {key!r}: {hint}use {', '.join(accepted)}"
    if problem["type"] == "union_tag_invalid" or problem["type"] == "union_tag_not_found":
        return f"{key}.kind must be one of {', '.join(MANIFEST_KINDS)}"
    message = problem["msg"].removeprefix("Value error, ")
    return f"{key or 'the manifest'}: {message}" + (
        f" (got {problem['input']!r})" if problem["type"] != "missing" and key else ""
    )


def _accepted_keys(data: dict, location: list[str]) -> list[str]:
    """The keys the model at ``location`` (a path into the manifest) takes."""
    model: type[BaseModel] = Manifest
    if location[:1] == ["tasks"] and len(location) == 2:
        kind = data.get("tasks", {}).get(location[1], {}).get("kind")
        model = next(
            (member for member in _TARGET_MODELS if kind in _kinds(member)), SegmentationTarget
        )
    elif location == ["splits"]:
        model = Splits
    return list(model.model_fields)


__all__ = [
    "MANIFEST_KINDS",
    "MANIFEST_NAME",
    "STEM",
    "DepthTarget",
    "ImageLevelTarget",
    "Manifest",
    "NormalsTarget",
    "RegressionTarget",
    "SaliencyTarget",
    "SegmentationTarget",
    "Splits",
    "Target",
    "dump_manifest",
    "load_manifest",
    "parse_manifest",
]
