"""The task interface: what every task provides, and dense outputs resized to their labels."""

from __future__ import annotations

import inspect
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nddr.data.conventions import TargetKind
from nddr.data.pictures import target_picture
from nddr.errors import NddrError

if TYPE_CHECKING:
    from torch import Tensor
    from torchmetrics import Metric

    from nddr.models.heads import HeadSpec


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
        from nddr.models.heads import HeadSpec

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


def check_option_choice(task: str, option: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise a one-line error naming the task and the choices if ``value`` is not one of them."""
    if not isinstance(value, str) or value not in choices:
        raise NddrError(
            f"task {task!r} option {option} = {value!r} is not valid: use {' or '.join(choices)}"
        )
