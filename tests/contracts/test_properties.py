"""Properties, checked on generated inputs: joint transforms, metrics and the config parser."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nddr.data.base import IGNORE_INDEX, TargetSpec
from nddr.data.transforms import JointTransform, to_tensors
from nddr.errors import NddrError
from nddr.tasks.metrics import (
    AccuracyMetric,
    AgeMetric,
    DepthMetric,
    NormalsMetric,
    SegmentationMetric,
    angle_error,
)
from nddr.training.config import Config, _known_keys, build_config, load_config

PROPERTY = settings(derandomize=True, max_examples=40, deadline=None, database=None)


CLASSES = 5


TARGETS = {
    "segmentation": TargetSpec("segmentation", CLASSES),
    "normals": TargetSpec("normals"),
    "depth": TargetSpec("depth"),
}


PLAIN = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def raw_sample(seed: int, height: int, width: int, invalid: float = 0.3) -> dict:
    """A raw sample in the base.py conventions; ``invalid`` of the pixels carry no label."""
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(height, width, 3))
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    segmentation = rng.integers(0, CLASSES, (height, width)).astype(np.uint8)
    depth = rng.uniform(0.5, 10.0, (height, width))
    unlabelled = rng.random((height, width)) < invalid
    segmentation[unlabelled] = IGNORE_INDEX
    normals[rng.random((height, width)) < invalid] = 0.0
    depth[rng.random((height, width)) < invalid] = 0.0
    return {
        "image": rng.integers(1, 256, (height, width, 3), dtype=np.uint8),
        "segmentation": segmentation,
        "normals": normals.astype(np.float32),
        "depth": depth.astype(np.float32),
    }


sizes = st.integers(1, 24)


scale_ranges = st.one_of(
    st.none(),
    st.tuples(st.floats(0.25, 2.0), st.floats(1.0, 2.0)).map(lambda t: (t[0], t[0] * t[1])),
)


crops = st.one_of(st.none(), st.tuples(st.integers(1, 32), st.integers(1, 32)))


@PROPERTY
@given(
    seed=st.integers(0, 2**16),
    height=sizes,
    width=sizes,
    crop=crops,
    scale_range=scale_ranges,
    flip=st.booleans(),
)
def test_training_transform_keeps_maps_aligned_and_valid(
    seed, height, width, crop, scale_range, flip
):
    sample = raw_sample(seed, height, width)
    transform = JointTransform(
        TARGETS, train=True, crop_size=crop, scale_range=scale_range, flip=flip, **PLAIN
    )
    out = transform(sample, torch.Generator().manual_seed(seed))
    again = transform(sample, torch.Generator().manual_seed(seed))
    assert all(torch.equal(out[key], again[key]) for key in out)  # same seed, same output

    size = out["image"].shape[-2:]
    if crop is not None:
        assert tuple(size) == crop
    assert out["segmentation"].shape == size and out["depth"].shape[-2:] == size
    assert out["normals"].shape == (3, *size)

    labels = set(np.unique(sample["segmentation"]).tolist()) | {IGNORE_INDEX}
    assert set(out["segmentation"].unique().tolist()) <= labels
    length = out["normals"].norm(dim=0)
    invalid = (out["normals"] == 0).all(dim=0)
    assert torch.allclose(length[~invalid], torch.ones(()), atol=1e-5)
    assert (out["depth"] >= 0).all()
    assert set(out["depth"].unique().tolist()) <= set(np.unique(sample["depth"]).tolist()) | {0.0}


@PROPERTY
@given(
    seed=st.integers(0, 2**16),
    height=sizes,
    width=sizes,
    crop=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    scale_range=scale_ranges,
)
def test_crop_padding_is_only_ignore_and_zero_bottom_right(seed, height, width, crop, scale_range):
    sample = raw_sample(seed, height, width, invalid=0.0)  # every input pixel labelled
    transform = JointTransform(
        TARGETS, train=True, crop_size=crop, scale_range=scale_range, flip=False, **PLAIN
    )
    out = transform(sample, torch.Generator().manual_seed(seed))
    padded = out["segmentation"] == IGNORE_INDEX
    assert torch.equal(padded, (out["normals"] == 0).all(dim=0))
    assert torch.equal(padded, out["depth"][0] == 0)
    assert torch.equal(padded, (out["image"] == 0).all(dim=0))  # pixels are >= 1 / 255
    # The labelled part is a top-left rectangle: padding goes below and to the right.
    rows, cols = int((~padded[:, 0]).sum()), int((~padded[0]).sum())
    expected = torch.zeros_like(padded)
    expected[:rows, :cols] = True
    assert torch.equal(~padded, expected)
    low = scale_range[0] if scale_range else 1.0
    if crop[0] <= round(height * low) and crop[1] <= round(width * low):
        assert not padded.any()


@PROPERTY
@given(seed=st.integers(0, 2**16), height=sizes, width=sizes)
def test_flip_mirrors_every_map_and_negates_normal_x(seed, height, width):
    sample = raw_sample(seed, height, width)
    kept = JointTransform(TARGETS, train=True, **PLAIN)(sample)
    mirrored = {key: value.flip(-1) for key, value in kept.items()}
    mirrored["normals"][0].neg_()
    flips = JointTransform(TARGETS, train=True, flip=True, **PLAIN)
    seen = set()
    for draw in range(32):  # both outcomes, but for a chance of 2**-31
        out = flips(sample, torch.Generator().manual_seed(seed + draw))
        same = all(torch.equal(out[key], kept[key]) for key in kept)
        mirror = all(torch.equal(out[key], mirrored[key]) for key in kept)
        assert same or mirror
        seen.add("same" if same else "mirror")
    assert seen == {"same", "mirror"} or all(torch.equal(kept[key], mirrored[key]) for key in kept)


@PROPERTY
@given(seed=st.integers(0, 2**16), height=sizes, width=sizes)
def test_evaluation_transform_keeps_size_and_values(seed, height, width):
    sample = raw_sample(seed, height, width)
    out = JointTransform(TARGETS, train=False, mean=(0.5, 0.25, 0.0), std=(2.0, 1.0, 0.5))(sample)
    plain = to_tensors(sample, TARGETS)
    assert out["image"].shape == (3, height, width)
    mean, std = torch.tensor([0.5, 0.25, 0.0]), torch.tensor([2.0, 1.0, 0.5])
    expected = (plain["image"] - mean.view(3, 1, 1)) / std.view(3, 1, 1)
    assert torch.allclose(out["image"], expected)
    assert torch.equal(out["segmentation"], torch.from_numpy(sample["segmentation"]).long())
    assert torch.equal(out["normals"], torch.from_numpy(sample["normals"]).permute(2, 0, 1))
    assert torch.equal(out["depth"][0], torch.from_numpy(sample["depth"]))


@st.composite
def batch_splits(draw, count: int) -> list[int]:
    """Cut points 0 < ... < count: how one set of images is split into batches."""
    cuts = draw(st.sets(st.integers(1, count - 1), max_size=count - 1)) if count > 1 else set()
    return [0, *sorted(cuts), count]


def in_batches(metric, cuts: list[int], *tensors) -> dict[str, float]:
    for start, stop in itertools.pairwise(cuts):
        metric.update(*(tensor[start:stop] for tensor in tensors))
    return {key: value.item() for key, value in metric.compute().items()}


def in_one_batch(metric, *tensors) -> dict[str, float]:
    return in_batches(metric, [0, len(tensors[0])], *tensors)


images = st.integers(1, 6)


@PROPERTY
@given(data=st.data(), count=images, seed=st.integers(0, 2**16), ignored=st.floats(0.0, 1.0))
def test_segmentation_scores_are_percentages_and_batch_split_invariant(data, count, seed, ignored):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, CLASSES, (count, 4, 5), generator=generator)
    target[torch.rand(target.shape, generator=generator) < ignored] = IGNORE_INDEX
    prediction = torch.randint(0, CLASSES, target.shape, generator=generator)
    whole = in_one_batch(SegmentationMetric(CLASSES), prediction, target)
    split = in_batches(
        SegmentationMetric(CLASSES), data.draw(batch_splits(count)), prediction, target
    )
    assert split == pytest.approx(whole, nan_ok=True)
    labelled = bool((target != IGNORE_INDEX).any())
    assert np.isnan(whole["miou"]) != labelled
    if labelled:
        assert 0 <= whole["miou"] <= 100 and 0 <= whole["pixel_accuracy"] <= 100
        perfect = torch.where(target == IGNORE_INDEX, prediction, target)
        result = in_one_batch(SegmentationMetric(CLASSES), perfect, target)
        assert result["miou"] == 100 and result["pixel_accuracy"] == 100


def reference_angles(prediction: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Angles in float64 NumPy, at the pixels whose target is not (0, 0, 0)."""
    p = np.moveaxis(prediction.double().numpy(), 1, -1).reshape(-1, 3)
    t = np.moveaxis(target.double().numpy(), 1, -1).reshape(-1, 3)
    valid = np.abs(t).sum(axis=1) > 0
    p, t = p[valid], t[valid]
    cosine = (p * t).sum(axis=1) / np.linalg.norm(p, axis=1) / np.linalg.norm(t, axis=1)
    return np.degrees(np.arccos(np.clip(cosine, -1, 1)))


@PROPERTY
@given(data=st.data(), count=images, seed=st.integers(0, 2**16))
def test_normals_angles_are_exact_pooled_and_batch_split_invariant(data, count, seed):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randn(count, 3, 3, 4, generator=generator)
    target[:, :, torch.rand(3, 4, generator=generator) < 0.3] = 0.0  # invalid pixels
    prediction = torch.randn(count, 3, 3, 4, generator=generator)
    whole = in_one_batch(NormalsMetric(), prediction, target)
    split = in_batches(NormalsMetric(), data.draw(batch_splits(count)), prediction, target)
    # Equal up to float32 rounding (vectorised kernels round a batch's last pixels differently).
    assert split == pytest.approx(whole, rel=1e-6, nan_ok=True)
    angles = reference_angles(prediction, target)
    if angles.size == 0:
        return
    assert 0 <= whole["median"] <= 180 and 0 <= whole["mean"] <= 180
    assert whole["median"] == pytest.approx(float(np.median(angles)), abs=1e-3)
    assert whole["mean"] == pytest.approx(float(angles.mean()), abs=1e-3)
    pooled = angle_error(prediction, target).double().numpy()
    assert whole["median"] == pytest.approx(float(np.median(pooled)), rel=1e-12)
    shares = [whole[f"within_{limit}"] for limit in ("11.25", "22.5", "30")]
    assert 0 <= shares[0] <= shares[1] <= shares[2] <= 100


@PROPERTY
@given(count=images, seed=st.integers(0, 2**16), scale=st.floats(0.01, 100.0))
def test_identical_normals_are_zero_degrees_apart(count, seed, scale):
    target = torch.randn(count, 3, 3, 4, generator=torch.Generator().manual_seed(seed))
    result = in_one_batch(NormalsMetric(), target * scale, target)
    assert result["mean"] == pytest.approx(0.0, abs=1e-4)
    assert result["median"] == pytest.approx(0.0, abs=1e-4)
    assert result["within_11.25"] == 100


@PROPERTY
@given(data=st.data(), count=images, seed=st.integers(0, 2**16))
def test_depth_errors_are_batch_split_invariant(data, count, seed):
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(count, 1, 3, 4, generator=generator) * 10
    target[torch.rand(target.shape, generator=generator) < 0.3] = 0.0
    prediction = torch.rand(count, 1, 3, 4, generator=generator) * 10
    whole = in_one_batch(DepthMetric(), prediction, target)
    split = in_batches(DepthMetric(), data.draw(batch_splits(count)), prediction, target)
    assert split == pytest.approx(whole, rel=1e-9)
    assert min(whole.values()) >= 0 and whole["delta_1.25"] <= 100
    exact = in_one_batch(DepthMetric(), target, target)
    assert exact["abs_error"] == exact["rel_error"] == exact["rmse"] == 0
    assert exact["delta_1.25"] == (100 if (target > 0).any() else 0)


@PROPERTY
@given(data=st.data(), count=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_age_errors_are_batch_split_invariant(data, count, seed):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(count, 100, generator=generator) * 3
    ages = torch.randint(0, 100, (count,), generator=generator)
    cuts = data.draw(batch_splits(count))
    whole = in_one_batch(AgeMetric(), logits, ages)
    # Equal up to float32 rounding: the expected age is a float32 matrix product.
    assert in_batches(AgeMetric(), cuts, logits, ages) == pytest.approx(whole, rel=1e-6)
    expected = (logits.double().softmax(1) @ torch.arange(100.0).double() - ages).abs().numpy()
    assert whole["mean_ae"] == pytest.approx(float(expected.mean()), abs=1e-3)
    assert whole["median_ae"] == pytest.approx(float(np.median(expected)), abs=1e-3)


@PROPERTY
@given(data=st.data(), count=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_accuracy_is_a_percentage_and_batch_split_invariant(data, count, seed):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(count, 4, generator=generator)
    labels = torch.randint(0, 4, (count,), generator=generator)
    whole = in_one_batch(AccuracyMetric(), scores, labels)
    split = in_batches(AccuracyMetric(), data.draw(batch_splits(count)), scores, labels)
    assert split == whole
    expected = 100 * (scores.argmax(1) == labels).double().mean().item()
    assert 0 <= whole["accuracy"] <= 100 and whole["accuracy"] == pytest.approx(expected)


NUMERIC_FIELDS = {
    "optim.lr": st.floats(1e-12, 1e3, allow_nan=False),
    "optim.momentum": st.floats(0.0, 1.0, exclude_max=True),
    "optim.weight_decay": st.floats(0.0, 1.0),
    "optim.poly_power": st.floats(0.0, 10.0),
    "optim.steps": st.integers(1, 10**9),
    "optim.grad_clip": st.floats(1e-6, 1e6),
    "data.batch_size": st.integers(1, 4096),
    "data.crop_size": st.integers(1, 4096),
    "run.seed": st.integers(-(2**31), 2**31),
    "run.log_every": st.integers(1, 10**6),
}


KNOWN = set(_known_keys()) | set(Config.model_fields)


@PROPERTY
@given(data=st.data(), keys=st.sets(st.sampled_from(sorted(NUMERIC_FIELDS)), min_size=1))
def test_numeric_overrides_round_trip(data, keys):
    values = {key: data.draw(NUMERIC_FIELDS[key], label=key) for key in sorted(keys)}
    config = build_config({}, [f"{key}={value!r}" for key, value in values.items()]).to_dict()
    for key, value in values.items():
        section, name = key.split(".")
        assert config[section][name] == value


identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


@PROPERTY
@given(
    section=st.sampled_from(["", "data.", "model.", "optim.", "run."]),
    name=identifiers,
    value=st.sampled_from(["1", "x", "[1, 2]", "{a: 1}", "null"]),
)
def test_unknown_keys_are_one_line_errors(section, name, value):
    key = section + name
    if key in KNOWN:
        return
    with pytest.raises(NddrError) as error:
        build_config({}, [f"{key}={value}"])
    message = str(error.value)
    assert f"unknown key {key!r}" in message and "\n" not in message


@settings(PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(max_size=20),
    root=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    tasks=st.one_of(st.none(), st.lists(identifiers, max_size=3)),
    options=st.dictionaries(identifiers, st.integers() | st.text(max_size=5), max_size=3),
    scale_range=st.one_of(st.none(), st.tuples(st.floats(0.1, 1.0), st.floats(1.0, 3.0))),
    lr=st.floats(1e-8, 10.0),
    seed=st.integers(0, 2**31),
)
def test_yaml_round_trip(tmp_path, name, root, tasks, options, scale_range, lr, seed):
    base = {
        "name": name,
        "data": {"root": root, "tasks": tasks, "options": options, "scale_range": scale_range},
        "optim": {"lr": lr},
        "run": {"seed": seed},
    }
    config = build_config(base)
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml(), encoding="utf-8")
    assert load_config(path) == config
