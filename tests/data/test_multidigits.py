"""The built-in MultiDigits dataset: real handwritten digit pairs, disjoint train/test sources."""

import numpy as np
import pytest

from nddr.data.base import TargetSpec, check_sample
from nddr.data.multidigits import MultiDigits, load_source_digits, source_split
from nddr.errors import NddrError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("multidigits")


@pytest.fixture(scope="module")
def train(cache):
    return MultiDigits(cache, "train", num_images=1500, seed=3, size=16)


@pytest.fixture(scope="module")
def test(cache):
    return MultiDigits(cache, "test", num_images=600, seed=3, size=16)


def test_samples_follow_the_conventions(train):
    assert len(train) == 1500
    assert train.targets == {
        "left": TargetSpec("classification", 10),
        "right": TargetSpec("classification", 10),
    }
    sample = train[7]
    assert sample["image"].dtype == np.uint8 and sample["image"].shape == (16, 32, 3)
    assert isinstance(sample["left"], int) and isinstance(sample["right"], int)
    for index in range(0, len(train), 97):
        check_sample(train.load_raw(index), train.targets, train.source(index))
    assert "load_digits images" in train.source(0)


def test_images_show_the_digits_with_varied_colours(train):
    images = train.images.astype(np.float32)
    assert images.std(axis=(1, 2, 3)).min() > 5  # every image has contrast
    assert np.ptp(images.mean(axis=(1, 2)), axis=0).min() > 100  # colours vary between images


def test_labels_are_the_source_digits_labels(train, test):
    _, labels = load_source_digits()
    for dataset in (train, test):
        assert np.array_equal(dataset.labels, labels[dataset.pairs])
        sample = dataset.load_raw(11)
        assert (sample["left"], sample["right"]) == tuple(labels[dataset.pairs[11]])
        for side in range(2):
            assert set(dataset.labels[:, side]) == set(range(10))


def test_train_and_test_sources_are_disjoint(train, test, tmp_path):
    assert np.intersect1d(train.source_indices, test.source_indices).size == 0
    assert len(train.source_indices) + len(test.source_indices) == 1797
    assert len(test.source_indices) == pytest.approx(0.2 * 1797, abs=10)
    assert np.isin(train.pairs, train.source_indices).all()
    assert np.isin(test.pairs, test.source_indices).all()
    # The source split does not depend on the seed the datasets are built with.
    other = MultiDigits(tmp_path, "test", num_images=50, seed=99, size=8)
    assert np.array_equal(other.source_indices, test.source_indices)


def test_source_split_is_fixed_and_stratified():
    _, labels = load_source_digits()
    first, again = source_split(labels, "test"), source_split(labels, "test")
    assert np.array_equal(first, again)
    assert set(labels[first]) == set(range(10))
    with pytest.raises(NddrError, match="split"):
        source_split(labels, "val")


def test_generation_is_deterministic_per_seed(tmp_path, test):
    again = MultiDigits(tmp_path / "a", "test", num_images=600, seed=3, size=16)
    assert np.array_equal(again.images, test.images)
    assert np.array_equal(again.pairs, test.pairs)
    other_seed = MultiDigits(tmp_path / "b", "test", num_images=600, seed=4, size=16)
    assert not np.array_equal(other_seed.pairs, test.pairs)
    assert np.array_equal(other_seed.source_indices, test.source_indices)
    prefix = MultiDigits(tmp_path / "c", "test", num_images=10, seed=3, size=16)
    assert np.array_equal(prefix.images, test.images[:10])


def test_cache_round_trip_and_corrupt_cache(cache, test, monkeypatch):
    path = test.cache_path
    assert path.parent == cache and path.suffix == ".npz" and path.is_file()
    with np.load(path, allow_pickle=False) as data:
        assert np.array_equal(data["images"], test.images)
    import nddr.data.multidigits as module

    def no_generation(*args, **kwargs):
        raise AssertionError("generated although cached")

    monkeypatch.setattr(module, "generate", no_generation)
    cached = MultiDigits(cache, "test", num_images=600, seed=3, size=16)
    assert np.array_equal(cached.images, test.images)
    assert np.array_equal(cached.source_indices, test.source_indices)
    monkeypatch.undo()

    path.write_bytes(b"not a zip file")
    rebuilt = MultiDigits(cache, "test", num_images=600, seed=3, size=16)
    assert np.array_equal(rebuilt.images, test.images)
    with np.load(path, allow_pickle=False) as data:  # the cache was rewritten
        assert data["images"].shape == (600, 16, 32, 3)


def test_cache_with_wrong_contents_is_regenerated(tmp_path):
    first = MultiDigits(tmp_path, "test", num_images=20, seed=0, size=8)
    arrays = {"images": first.images[:5], "pairs": first.pairs, "labels": first.labels}
    np.savez(first.cache_path, source_indices=first.source_indices, **arrays)
    again = MultiDigits(tmp_path, "test", num_images=20, seed=0, size=8)
    assert np.array_equal(again.images, first.images)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NDDR_CACHE", str(tmp_path))
    dataset = MultiDigits(split="test", num_images=4, size=8)
    assert dataset.cache_path.parent == tmp_path and dataset.cache_path.is_file()


def test_task_selection_and_transform(tmp_path):
    dataset = MultiDigits(
        tmp_path, "test", num_images=4, size=8, tasks=["right"], transform=lambda s: sorted(s)
    )
    assert list(dataset.targets) == ["right"]
    assert "left" not in dataset.load_raw(0)
    assert dataset[0] == ["image", "right"]
    with pytest.raises(NddrError, match="no target 'middle'"):
        MultiDigits(tmp_path, "test", num_images=4, size=8, tasks=["middle"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": "val"}, "unknown MultiDigits split 'val'"),
        ({"num_images": 0}, "num_images must be an integer >= 1"),
        ({"num_images": 2.5}, "num_images"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"size": 4}, "size must be an integer >= 8"),
        ({"size": True}, "size"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(NddrError, match=match):
        MultiDigits(tmp_path, **kwargs)


def test_unwritable_cache_warns_and_still_works(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="cannot write its cache"):
        dataset = MultiDigits(blocker, "test", num_images=3, size=8)
    assert len(dataset) == 3 and dataset.load_raw(2)["image"].shape == (8, 16, 3)
