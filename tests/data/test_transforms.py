import numpy as np
import pytest
import torch

from nddr.data.base import TargetSpec
from nddr.data.transforms import IMAGENET_MEAN, IMAGENET_STD, JointTransform, to_tensors
from nddr.errors import NddrError

TARGETS = {
    "segmentation": TargetSpec("segmentation", 4),
    "normals": TargetSpec("normals"),
    "depth": TargetSpec("depth"),
    "gender": TargetSpec("classification", 2),
}


def _sample(height: int = 10, width: int = 12) -> dict:
    rng = np.random.default_rng(0)
    normals = np.zeros((height, width, 3), np.float32)
    normals[..., 0], normals[..., 2] = 0.6, 0.8
    return {
        "image": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "segmentation": np.tile(np.arange(width, dtype=np.uint8) % 4, (height, 1)),
        "normals": normals,
        "depth": np.full((height, width), 2.0, np.float32),
        "gender": 1,
    }


def test_evaluation_keeps_the_whole_image_and_normalises():
    sample = _sample()
    out = JointTransform(TARGETS, train=False)(sample)
    assert out["image"].shape == (3, 10, 12) and out["image"].dtype == torch.float32
    expected = (sample["image"][0, 0, 0] / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    assert out["image"][0, 0, 0].item() == pytest.approx(expected, rel=1e-5)
    assert out["segmentation"].dtype == torch.int64 and out["segmentation"].shape == (10, 12)
    assert out["normals"].shape == (3, 10, 12) and out["depth"].shape == (1, 10, 12)
    assert out["gender"].item() == 1 and out["gender"].dtype == torch.int64


def test_flip_mirrors_every_map_and_negates_normal_x():
    sample = _sample()
    plain = to_tensors(sample, TARGETS)
    transform = JointTransform(
        TARGETS,
        train=True,
        crop_size=None,
        scale_range=None,
        flip=True,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        generator=torch.Generator().manual_seed(0),
    )
    seen = set()
    for _ in range(20):
        out = transform(sample)
        flipped = torch.equal(out["image"], plain["image"].flip(-1))
        assert flipped or torch.equal(out["image"], plain["image"])
        seen.add(flipped)
        assert torch.equal(
            out["segmentation"],
            plain["segmentation"].flip(-1) if flipped else plain["segmentation"],
        )
        assert torch.allclose(out["normals"][0], torch.full((10, 12), -0.6 if flipped else 0.6))
        assert torch.allclose(out["normals"][2], torch.full((10, 12), 0.8))
        assert out["gender"].item() == 1
    assert seen == {True, False}


def test_crop_pads_targets_with_their_ignore_values():
    transform = JointTransform(
        TARGETS,
        train=True,
        crop_size=16,
        scale_range=None,
        flip=False,
        generator=torch.Generator().manual_seed(0),
    )
    out = transform(_sample(10, 12))
    assert out["image"].shape == (3, 16, 16)
    assert out["segmentation"].shape == (16, 16)
    padded = out["segmentation"] == 255
    assert padded.sum() == 16 * 16 - 10 * 12
    assert (out["normals"].abs().sum(0)[padded] == 0).all()
    assert (out["depth"][0][padded] == 0).all()
    assert (out["image"][:, padded] == 0).all()  # 0 after normalisation: the mean colour


def test_scale_resizes_labels_by_nearest_and_keeps_normals_unit():
    transform = JointTransform(
        TARGETS, train=True, crop_size=None, scale_range=(1.5, 1.5), flip=False
    )
    out = transform(_sample(10, 12))
    assert out["image"].shape == (3, 15, 18) and out["segmentation"].shape == (15, 18)
    assert set(out["segmentation"].unique().tolist()) <= {0, 1, 2, 3}
    assert torch.allclose(out["normals"].norm(dim=0), torch.ones(15, 18))
    assert torch.allclose(out["depth"], torch.full((1, 15, 18), 2.0))


def test_crop_of_a_large_image_is_inside_it():
    transform = JointTransform(TARGETS, train=True, crop_size=(4, 5), scale_range=None, flip=False)
    out = transform(_sample(10, 12))
    assert out["image"].shape == (3, 4, 5) and (out["segmentation"] != 255).all()


def test_bad_scale_range_is_an_error():
    with pytest.raises(NddrError, match="scale range"):
        JointTransform(TARGETS, train=True, scale_range=(0.0, 1.0))


def test_values_are_keywords_and_each_augmentation_is_off_unless_given():
    """No crop, scale or flip by default (the config's ``data`` section owns those defaults):
    ``train=True`` with none of them gives the evaluation transform's sample."""
    with pytest.raises(TypeError, match="positional"):
        JointTransform(TARGETS, True, 16)
    sample = _sample()
    plain = JointTransform(TARGETS, train=True)(sample, torch.Generator().manual_seed(0))
    evaluation = JointTransform(TARGETS, train=False)(sample)
    assert all(torch.equal(plain[key], evaluation[key]) for key in evaluation)


def test_saliency_pads_with_ignore_and_regression_stays_a_float():
    targets = {"saliency": TargetSpec("saliency"), "score": TargetSpec("regression")}
    sample = {
        "image": np.zeros((4, 5, 3), np.uint8),
        "saliency": np.ones((4, 5), np.uint8),
        "score": 2.75,
    }
    out = JointTransform(targets, train=True, crop_size=(6, 8))(sample)
    assert out["saliency"].dtype == torch.int64 and out["saliency"].shape == (6, 8)
    assert (out["saliency"][4:] == 255).all() and (out["saliency"][:4, :5] == 1).all()
    assert out["score"].dtype == torch.float32 and out["score"].item() == 2.75
