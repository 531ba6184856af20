"""Image-level tasks (paper §5.2): a class (gender, digits), age as expected value, and one real
value per image (regression)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, ClassVar

from nddr.data.conventions import TargetKind
from nddr.tasks.base import Task, check_option_choice

if TYPE_CHECKING:
    from torch import Tensor
    from torchmetrics import Metric


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
        from nddr.tasks.metrics import AccuracyMetric

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
        from nddr.tasks.metrics.classification import expected_age

        return expected_age(output)

    def metric(self) -> Metric:
        from nddr.tasks.metrics import AgeMetric

        return AgeMetric()

    def save_prediction(
        self, output: Tensor, prediction: Tensor, out_dir: Path, stem: PurePosixPath
    ) -> dict[str, object]:
        """The expected age."""
        return {"expected_age": round(float(prediction), 2)}


class Regression(Task):
    """One real value per image from a one-output head: L1 (or smooth-L1) loss; mean absolute
    error and RMSE in the target's unit.

    Args:
        criterion: ``"l1"`` (default) or ``"smooth_l1"`` (Huber with beta = 1: quadratic within
            one unit of the target, so large early errors give bounded gradients).
    """

    kind = TargetKind.REGRESSION
    higher_is_better: ClassVar[dict[str, bool]] = {"mae": False, "rmse": False}
    primary = "mae"
    CRITERIA: ClassVar[tuple[str, ...]] = ("l1", "smooth_l1")

    def __init__(
        self,
        name: str,
        num_classes: int | None = None,
        weight: float = 1.0,
        class_names: tuple[str, ...] | None = None,
        *,
        criterion: str = "l1",
    ) -> None:
        super().__init__(name, num_classes, weight, class_names)
        check_option_choice(name, "criterion", criterion, self.CRITERIA)
        self.criterion = criterion

    @property
    def out_channels(self) -> int:
        return 1

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        import torch.nn.functional as F

        predicted = self.predict(output)
        if self.criterion == "smooth_l1":
            return F.smooth_l1_loss(predicted, target.float())
        return F.l1_loss(predicted, target.float())

    def predict(self, output: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        return output.float().reshape(output.shape[0])

    def metric(self) -> Metric:
        from nddr.tasks.metrics import RegressionMetric

        return RegressionMetric()

    def save_prediction(
        self, output: Tensor, prediction: Tensor, out_dir: Path, stem: PurePosixPath
    ) -> dict[str, object]:
        """The predicted value."""
        return {"value": round(float(prediction), 4)}
