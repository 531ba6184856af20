import numpy as np
import pytest

from nddr.data.base import TargetKind, TargetSpec, check_sample
from nddr.errors import NddrError

IMAGE = np.zeros((2, 3, 3), dtype=np.uint8)


def test_new_kinds_need_no_class_count():
    assert TargetSpec("saliency").dense and not TargetSpec("regression").dense
    assert not TargetKind.SALIENCY.has_classes and not TargetKind.REGRESSION.has_classes


@pytest.mark.parametrize(
    "value", [0.5, np.float32(-3.0), np.array(2.5, dtype=np.float64), np.array([1.0])]
)
def test_regression_accepts_finite_floats(value):
    check_sample({"image": IMAGE, "score": value}, {"score": TargetSpec("regression")}, "f.jpg")


@pytest.mark.parametrize("value", [float("nan"), np.inf, 3, "1.0", np.array([1.0, 2.0])])
def test_regression_refuses_other_values_naming_the_file(value):
    targets = {"score": TargetSpec("regression")}
    with pytest.raises(NddrError, match=r"^f\.jpg: score value .* is not a finite float"):
        check_sample({"image": IMAGE, "score": value}, targets, "f.jpg")


def test_saliency_accepts_0_1_and_ignore():
    mask = np.array([[0, 1, 255], [1, 0, 0]], dtype=np.uint8)
    check_sample({"image": IMAGE, "sal": mask}, {"sal": TargetSpec("saliency")}, "s.png")


@pytest.mark.parametrize(
    "mask, fragment",
    [
        (np.array([[0, 2, 0], [0, 0, 0]], dtype=np.uint8), "has value 2: a saliency mask holds 0"),
        (np.zeros((2, 3), dtype=np.float32), "must be uint8 with 2 dims"),
        (np.zeros((2, 3, 1), dtype=np.uint8), "must be uint8 with 2 dims"),
        (np.zeros((3, 3), dtype=np.uint8), "has shape (3, 3), the image is 2x3"),
    ],
)
def test_saliency_refuses_bad_masks_naming_the_file(mask, fragment):
    with pytest.raises(NddrError, match=r"^s\.png: sal ") as error:
        check_sample({"image": IMAGE, "sal": mask}, {"sal": TargetSpec("saliency")}, "s.png")
    assert fragment in str(error.value) and "\n" not in str(error.value)
