"""Tasks: what is specific to each (paper §4, §5.2): head size, loss, prediction, metric, picture.

A task is built from a dataset's :class:`~nddr.data.base.TargetSpec` (:func:`build_tasks`) and
names the target key it reads; a task's options (``optim.task_options``, e.g. the normals'
``space``) are keyword arguments of its class. Dense outputs (``N x C x h x w``, at the
network's output stride) are upsampled bilinearly to the target's size, for the loss as for the
metric, so training and evaluation compare at the labels' full resolution. Torch is imported where
a task computes, so the task kinds and their metrics' directions load without it (``--help``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nddr.data.conventions import IGNORE_INDEX, TargetKind
from nddr.data.pictures import target_picture
from nddr.errors import NddrError, unknown_choice

if TYPE_CHECKING:
    from torch import Tensor
    from torchmetrics import Metric

    from nddr.data.base import TargetSpec
    from nddr.heads import HeadSpec


def resize_output(output: Tensor, size: tuple[int, int]) -> Tensor:
    """Upsample a dense output to ``size`` (bilinear, align_corners=False), if it differs."""
    import torch.nn.functional as F

    if tuple(output.shape[-2:]) == tuple(size):
        return output
    return F.interpolate(output, size=size, mode="bilinear", align_corners=False)


class Task:
    """Base task. Subclasses set ``kind`` (a :class:`~nddr.data.conventions.TargetKind`, which
    also says whether the task is ``dense``), ``higher_is_better`` and ``primary``; their options
    are keyword-only arguments of ``__init__`` kept as attributes of the same name.

    Args:
        name: The target key in a sample and the output key of the network.
        num_classes: Classes of classification-like tasks.
        weight: Weight of this task's loss in the sum (paper: 20 for normals on NYUv2).
        class_names: Names of the classes, for tables and pictures.
    """

    kind: ClassVar[TargetKind]
    higher_is_better: ClassVar[dict[str, bool]]
    primary: ClassVar[str]

    def __init__(
        self,
        name: str,
        num_classes: int | None = None,
        weight: float = 1.0,
        class_names: tuple[str, ...] | None = None,
    ) -> None:
        self.name = name
        self.num_classes = num_classes
        self.weight = weight
        self.class_names = class_names

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """The options this kind of task takes, with their defaults."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}

    @property
    def options(self) -> dict[str, Any]:
        """This task's options (what a checkpoint stores to rebuild it)."""
        return {name: getattr(self, name) for name in self.option_defaults()}

    @property
    def dense(self) -> bool:
        """Whether the output is per pixel (``N x C x h x w``) rather than per image."""
        return self.kind.dense

    @property
    def out_channels(self) -> int:
        assert self.num_classes is not None
        return self.num_classes

    def head_spec(self, kind: str | None = None) -> HeadSpec:
        """What the network builder needs for this task's head."""
        from nddr.heads import HeadSpec

        return HeadSpec(self.name, self.out_channels, dense=self.dense, kind=kind)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """The prediction in the target's terms (labels, unit normals, depth, age)."""
        raise NotImplementedError

    def metric(self) -> Metric:
        raise NotImplementedError

    def update_metric(self, metric: Metric, output: Tensor, target: Tensor) -> None:
        """Add a batch of raw outputs to this task's :meth:`metric`, predicted at the target's
        size (what evaluation does, in one place)."""
        size = tuple(target.shape[-2:]) if self.dense else None
        metric.update(self.predict(output, size), target)

    def picture(self, value: np.ndarray) -> np.ndarray | str:
        """One sample's target or prediction (raw conventions) as an RGB panel or a caption."""
        return target_picture(self.name, self.kind, value, self.num_classes)

    def save_prediction(
        self, output: Tensor, prediction: Tensor, out_dir: Path, stem: PurePosixPath
    ) -> object:
        """Write one image's prediction (:meth:`predict` of its raw ``output``, batch of one)
        under ``out_dir`` and return its entry of predictions.json.

        Dense tasks write ``STEM_NAME.png`` (:meth:`picture`) and the raw ``STEM_NAME.npy`` (in
        the target's conventions) and return the PNG's name; image-level tasks write nothing.
        """
        from nddr.data.files import write_npy, write_png

        value = self.prediction_array(prediction)
        picture = f"{stem}_{self.name}.png"
        write_png(self.picture(value), out_dir / picture)
        write_npy(value, out_dir / f"{stem}_{self.name}.npy")
        return picture

    def prediction_array(self, prediction: Tensor) -> np.ndarray:
        """One image's dense prediction as the target's raw array (see :mod:`nddr.data.base`)."""
        return prediction.numpy()

    def __repr__(self) -> str:
        options = "".join(f", {key}={value!r}" for key, value in self.options.items())
        return (
            f"{type(self).__name__}({self.name!r}, num_classes={self.num_classes}, "
            f"weight={self.weight}{options})"
        )


class Segmentation(Task):
    """Per-pixel classification: cross-entropy ignoring label 255; mIoU and pixel accuracy."""

    kind = TargetKind.SEGMENTATION
    higher_is_better: ClassVar[dict[str, bool]] = {"miou": True, "pixel_accuracy": True}
    primary = "miou"

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        output = resize_output(output, target.shape[-2:])
        return F.cross_entropy(output.float(), target, ignore_index=IGNORE_INDEX)

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        return resize_output(output, size or output.shape[-2:]).argmax(dim=1)

    def metric(self) -> Metric:
        from nddr.metrics import SegmentationMetric

        return SegmentationMetric(self.out_channels, IGNORE_INDEX)

    def prediction_array(self, prediction: Tensor) -> np.ndarray:
        return prediction.numpy().astype(np.uint8)


_NORMAL_SUMMARY = {
    "mean": False,
    "median": False,
    "within_11.25": True,
    "within_22.5": True,
    "within_30": True,
}


class SurfaceNormals(Task):
    """Normals: mean over valid pixels of 1 - cos(output, truth) (paper §4: the l2 loss on unit
    vectors, ||a - b||^2 = 2 - 2 cos); angle error mean / median / % within thresholds, true and
    in the released code's 8-bit encoding (``encoded_*``, :mod:`nddr.metrics.normals`).

    Args:
        space: ``"unit"``: the output is a normal's direction, the loss compares it with the unit
            normal. ``"encoded"``: as the released code, with the 8-bit encoded ground truth
            e = (n + 1) / 2 * 255 (rounded as the PNGs store it), so the output is a direction
            in that space: predictions are decoded from it (:func:`~nddr.metrics.normals.
            decode_normals`) and the ``encoded_*`` metrics use it as is.
    """

    kind = TargetKind.NORMALS
    higher_is_better: ClassVar[dict[str, bool]] = {
        **_NORMAL_SUMMARY,
        **{f"encoded_{key}": higher for key, higher in _NORMAL_SUMMARY.items()},
    }
    primary = "mean"
    SPACES: ClassVar[tuple[str, ...]] = ("unit", "encoded")

    def __init__(
        self,
        name: str,
        num_classes: int | None = None,
        weight: float = 1.0,
        class_names: tuple[str, ...] | None = None,
        *,
        space: str = "unit",
    ) -> None:
        super().__init__(name, num_classes, weight, class_names)
        if not isinstance(space, str) or space not in self.SPACES:
            choices = " or ".join(self.SPACES)
            raise NddrError(f"task {name!r} option space = {space!r} is not valid: use {choices}")
        self.space = space

    @property
    def out_channels(self) -> int:
        return 3

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        from nddr.metrics.normals import encode_normals, valid_normals

        output = resize_output(output, target.shape[-2:])
        valid = valid_normals(target)
        if not valid.any():
            return output.sum() * 0.0
        truth = encode_normals(target, rounded=True) if self.space == "encoded" else target
        predicted = F.normalize(output.float(), dim=1)
        cosine = (predicted * F.normalize(truth.float(), dim=1)).sum(dim=1)
        return (1.0 - cosine[valid]).mean()

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        import torch.nn.functional as F

        output = resize_output(output, size or output.shape[-2:]).float()
        if self.space == "encoded":
            from nddr.metrics.normals import decode_normals

            return decode_normals(output)
        return F.normalize(output, dim=1)

    def update_metric(self, metric: Metric, output: Tensor, target: Tensor) -> None:
        output = resize_output(output, target.shape[-2:]).float()
        encoded = output if self.space == "encoded" else None
        metric.update(self.predict(output), target, encoded)

    def metric(self) -> Metric:
        from nddr.metrics import NormalsMetric

        return NormalsMetric()

    def prediction_array(self, prediction: Tensor) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(prediction.numpy(), 0, -1))


class Depth(Task):
    """Metric depth (beyond the paper): L1 over valid pixels; abs / rel error, RMSE, delta."""

    kind = TargetKind.DEPTH
    higher_is_better: ClassVar[dict[str, bool]] = {
        "abs_error": False,
        "rel_error": False,
        "rmse": False,
        "delta_1.25": True,
    }
    primary = "abs_error"

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        output = resize_output(output, target.shape[-2:])
        valid = target > 0
        if not valid.any():
            return output.sum() * 0.0
        return F.l1_loss(output.float()[valid], target[valid])

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        return resize_output(output, size or output.shape[-2:]).float()

    def metric(self) -> Metric:
        from nddr.metrics import DepthMetric

        return DepthMetric()

    def prediction_array(self, prediction: Tensor) -> np.ndarray:
        return prediction.numpy()[0]


class Classification(Task):
    """Image-level class (gender, digits): cross-entropy; accuracy."""

    kind = TargetKind.CLASSIFICATION
    higher_is_better: ClassVar[dict[str, bool]] = {"accuracy": True}
    primary = "accuracy"

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(output.float(), target)

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        return output.argmax(dim=1)

    def metric(self) -> Metric:
        from nddr.metrics import AccuracyMetric

        return AccuracyMetric()

    def save_prediction(
        self, output: Tensor, prediction: Tensor, out_dir: Path, stem: PurePosixPath
    ) -> dict[str, object]:
        """The class (its name if the task has names) and its probability."""
        probability = output.softmax(dim=1)[0].cpu()
        label = int(prediction)
        name = self.class_names[label] if self.class_names else label
        return {"class": name, "probability": round(float(probability[label]), 4)}


class Age(Task):
    """Age as C-way classification over 0..C-1 years; the prediction is the expected age
    sum_k p(k) k (paper §5.2); mean and median absolute error."""

    kind = TargetKind.AGE
    higher_is_better: ClassVar[dict[str, bool]] = {"mean_ae": False, "median_ae": False}
    primary = "mean_ae"

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(output.float(), target)

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        from nddr.metrics.classification import expected_age

        return expected_age(output)

    def metric(self) -> Metric:
        from nddr.metrics import AgeMetric

        return AgeMetric()

    def save_prediction(
        self, output: Tensor, prediction: Tensor, out_dir: Path, stem: PurePosixPath
    ) -> dict[str, object]:
        """The expected age."""
        return {"expected_age": round(float(prediction), 2)}


TASKS: dict[str, type[Task]] = {
    task.kind: task for task in (Segmentation, SurfaceNormals, Depth, Classification, Age)
}


def build_task(
    name: str, spec: TargetSpec, weight: float = 1.0, options: Mapping[str, Any] | None = None
) -> Task:
    """The task of kind ``spec.kind`` reading target ``name``, with its ``options``."""
    if spec.kind not in TASKS:
        raise unknown_choice("task kind", spec.kind, TASKS)
    task_type = TASKS[spec.kind]
    options = dict(options or {})
    accepted = task_type.option_defaults()
    for key in options:
        if key not in accepted:
            takes = f"it takes {', '.join(accepted)}" if accepted else "it takes none"
            raise NddrError(f"task {name!r} ({spec.kind}) has no option {key!r}: {takes}")
    return task_type(name, spec.num_classes, weight, spec.class_names, **options)


def build_tasks(
    targets: Mapping[str, TargetSpec],
    weights: Mapping[str, float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Task]:
    """One task per dataset target, in the dataset's order, with optional loss weights and
    options (task name -> options of that task)."""
    weights, options = dict(weights or {}), dict(options or {})
    return [
        build_task(name, spec, weights.get(name, 1.0), options.get(name))
        for name, spec in targets.items()
    ]


def total_loss(
    tasks: list[Task], outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of the task losses and each task's unweighted loss."""
    import torch

    losses = {task.name: task.loss(outputs[task.name], batch[task.name]) for task in tasks}
    total = torch.stack([task.weight * losses[task.name] for task in tasks]).sum()
    return total, losses
