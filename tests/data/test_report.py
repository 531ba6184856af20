"""``nddr data check`` / ``show``'s computations: per-target counts, problems named, the grid."""

import numpy as np

from nddr.data.base import IGNORE_INDEX, MultiTaskDataset, TargetSpec
from nddr.data.report import sample_grid, summarise


class _Samples(MultiTaskDataset):
    """Four 4x4 samples held in memory; ``broken`` ones have a label outside the classes."""

    split = "train"

    def __init__(self, broken=()):
        super().__init__()
        self.targets = {
            "seg": TargetSpec("segmentation", 3),
            "depth": TargetSpec("depth"),
            "normals": TargetSpec("normals"),
            "gender": TargetSpec("classification", 2, ("female", "male")),
        }
        self.broken = set(broken)

    def __len__(self):
        return 4

    def source(self, index):
        return f"sample-{index}.png"

    def load_raw(self, index):
        seg = np.full((4, 4), index % 3, np.uint8)
        seg[0, 0] = IGNORE_INDEX
        if index in self.broken:
            seg[1, 1] = 7
        depth = np.full((4, 4), 1.0 + index, np.float32)
        depth[:, 0] = 0
        normals = np.zeros((4, 4, 3), np.float32)
        normals[..., 2] = 1
        normals[0] = 0
        return {
            "image": np.full((4, 4, 3), 40 * index, np.uint8),
            "seg": seg,
            "depth": depth,
            "normals": normals,
            "gender": index % 2,
        }


def test_summary_counts_classes_invalid_pixels_and_depth_range():
    summary = summarise(_Samples())
    assert (summary["count"], summary["checked"], summary["problems"]) == (4, 4, [])
    targets = summary["targets"]
    assert targets["seg"]["histogram"] == [15 + 15, 15, 15]
    assert targets["seg"]["invalid_fraction"] == 1 / 16
    assert targets["depth"]["invalid_fraction"] == 4 / 16
    assert (targets["depth"]["min"], targets["depth"]["max"]) == (1.0, 4.0)
    assert targets["normals"]["invalid_fraction"] == 4 / 16
    assert targets["gender"]["histogram"] == [2, 2]
    assert targets["gender"]["class_names"] == ["female", "male"]


def test_bad_samples_are_named_and_left_out_of_the_counts():
    summary = summarise(_Samples(broken={2}))
    (problem,) = summary["problems"]
    assert problem.startswith("sample-2.png: seg has label 7")
    assert sum(summary["targets"]["seg"]["histogram"]) == 3 * 15


def test_limit_checks_the_first_samples_and_reports_progress():
    seen = []
    summary = summarise(_Samples(), limit=2, progress=seen.append)
    assert (summary["count"], summary["checked"], seen) == (4, 2, [1, 2])
    assert summary["targets"]["gender"]["histogram"] == [1, 1]


def test_grid_has_a_row_per_sample_with_a_panel_per_dense_target():
    picture = sample_grid(_Samples(), [0, 3], min_height=8)
    width, height = picture.size
    # 4 panels (image, seg, depth, normals) of 8 px with 2 px gaps; rows of 8 px + caption + gap.
    assert width == 4 * 8 + 3 * 2
    assert height == 2 * (8 + 12 + 2)


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
