import numpy as np

from nddr.data.base import MultiTaskDataset, TargetSpec
from nddr.data.report import sample_grid, summarise


class _Masks(MultiTaskDataset):
    """Two samples with a saliency mask and a regression value."""

    def __init__(self) -> None:
        super().__init__()
        self.targets = {"saliency": TargetSpec("saliency"), "score": TargetSpec("regression")}

    def __len__(self) -> int:
        return 2

    def load_raw(self, index: int) -> dict:
        mask = (
            np.array([[0, 1], [1, 255]], dtype=np.uint8)
            if index == 0
            else np.ones((2, 2), np.uint8)
        )
        return {
            "image": np.zeros((2, 2, 3), np.uint8),
            "saliency": mask,
            "score": [-1.5, 4.0][index],
        }


def test_summary_counts_saliency_classes_and_regression_range():
    summary = summarise(_Masks())
    saliency, score = summary["targets"]["saliency"], summary["targets"]["score"]
    assert saliency["histogram"] == [1, 6] and saliency["class_names"] == ["background", "salient"]
    assert saliency["invalid_fraction"] == 1 / 8
    assert (score["min"], score["max"]) == (-1.5, 4.0)
    assert summary["problems"] == []


def test_grid_draws_the_mask_and_captions_the_value():
    image = np.asarray(sample_grid(_Masks(), [0], min_height=2))
    assert image.shape[1] >= 4  # image | saliency side by side
