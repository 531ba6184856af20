"""Dense tasks (paper §4): segmentation, surface normals, depth, saliency; outputs at the
labels' size."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from nddr.data.conventions import IGNORE_INDEX, TargetKind
from nddr.tasks.base import Task, check_option_choice, resize_output

if TYPE_CHECKING:
    from torch import Tensor
    from torchmetrics import Metric


class Segmentation(Task):
    """Per-pixel classification: cross-entropy ignoring label 255 (zero for a batch without a
    labelled pixel, not NaN); mIoU and pixel accuracy."""

    kind = TargetKind.SEGMENTATION
    higher_is_better: ClassVar[dict[str, bool]] = {"miou": True, "pixel_accuracy": True}
    primary = "miou"

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        output = resize_output(output, target.shape[-2:])
        if not (target != IGNORE_INDEX).any():  # e.g. human parts of images without people
            return output.sum() * 0.0
        return F.cross_entropy(output.float(), target, ignore_index=IGNORE_INDEX)

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        return resize_output(output, size or output.shape[-2:]).argmax(dim=1)

    def metric(self) -> Metric:
        from nddr.tasks.metrics import SegmentationMetric

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
    in the released code's 8-bit encoding (``encoded_*``, :mod:`nddr.tasks.metrics.normals`).

    Args:
        space: ``"unit"``: the output is a normal's direction, the loss compares it with the unit
            normal. ``"encoded"``: as the released code, with the 8-bit encoded ground truth
            e = (n + 1) / 2 * 255 (rounded as the PNGs store it), so the output is a direction
            in that space: predictions are decoded from it (:func:`~nddr.tasks.metrics.normals.
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
        check_option_choice(name, "space", space, self.SPACES)
        self.space = space

    @property
    def out_channels(self) -> int:
        return 3

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        from nddr.tasks.metrics.normals import encode_normals, valid_normals

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
            from nddr.tasks.metrics.normals import decode_normals

            return decode_normals(output)
        return F.normalize(output, dim=1)

    def update_metric(self, metric: Metric, output: Tensor, target: Tensor) -> None:
        output = resize_output(output, target.shape[-2:]).float()
        encoded = output if self.space == "encoded" else None
        metric.update(self.predict(output), target, encoded)

    def metric(self) -> Metric:
        from nddr.tasks.metrics import NormalsMetric

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
        from nddr.tasks.metrics import DepthMetric

        return DepthMetric()

    def prediction_array(self, prediction: Tensor) -> np.ndarray:
        return prediction.numpy()[0]


class Saliency(Task):
    """Salient object masks (PASCAL-Context multi-task): binary cross-entropy on a one-channel
    logit over labelled pixels; max F-measure (beta^2 = 0.3) and the two classes' mIoU at 0.5
    (:mod:`nddr.tasks.metrics.saliency`). The prediction is the salient probability (N x H x W).
    """

    kind = TargetKind.SALIENCY
    higher_is_better: ClassVar[dict[str, bool]] = {"max_f": True, "miou": True}
    primary = "max_f"

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        logits = resize_output(output, target.shape[-2:])[:, 0].float()
        valid = target != IGNORE_INDEX
        if not valid.any():
            return output.sum() * 0.0
        return F.binary_cross_entropy_with_logits(logits[valid], target[valid].float())

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        return resize_output(output, size or output.shape[-2:])[:, 0].float().sigmoid()

    def metric(self) -> Metric:
        from nddr.tasks.metrics import SaliencyMetric

        return SaliencyMetric()

    def prediction_array(self, prediction: Tensor) -> np.ndarray:
        """The salient probability, float32 (H, W) in [0, 1]."""
        return prediction.numpy().astype(np.float32)
