import numpy as np
import pytest

from nddr import NddrError
from nddr.data import scenes
from nddr.data.base import IGNORE_INDEX, check_sample
from nddr.data.scenes import SCENE_CLASSES, Scenes, generate_scenes

SIZE = 32


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    return Scenes(tmp_path_factory.mktemp("cache"), size=SIZE, num_images=8)


def _cameras(count: int, seed: int = 0, split: str = "train") -> scenes._SceneBatch:
    """The scene parameters the generator draws (to know each image's camera)."""
    batch = scenes._SceneBatch.empty(count)
    for index in range(count):
        sequence = np.random.SeedSequence(seed, spawn_key=(scenes.SPLITS.index(split), index))
        scenes._sample_scene(np.random.default_rng(sequence), batch, index)
    return batch


def _view_rays(tan_half_fov: float, size: int) -> np.ndarray:
    """Camera-frame rays (x, y, -1) through the pixel centres: depth times this is the point."""
    grid = ((np.arange(size) + 0.5) * 2 / size - 1) * tan_half_fov
    u, v = np.meshgrid(grid, -grid)
    return np.stack([u, v, -np.ones_like(u)], axis=-1)


def test_samples_follow_the_conventions(train):
    assert len(train) == 8 and train.split == "train"
    assert set(train.targets) == {"segmentation", "normals", "depth"}
    assert train.targets["segmentation"].num_classes == len(SCENE_CLASSES)
    for index in range(len(train)):
        sample = train[index]
        check_sample(sample, train.targets, train.source(index))
        assert sample["image"].shape == (SIZE, SIZE, 3) and sample["image"].dtype == np.uint8
        assert sample["segmentation"].shape == (SIZE, SIZE)
        assert sample["segmentation"].dtype == np.uint8
        assert sample["normals"].shape == (SIZE, SIZE, 3)
        assert sample["normals"].dtype == np.float32
        assert sample["depth"].shape == (SIZE, SIZE) and sample["depth"].dtype == np.float32
    assert "scenes[train 3]" in train.source(3) and ".npz" in train.source(3)


def test_every_pixel_is_valid_with_unit_normals_facing_the_camera(train):
    cameras = _cameras(len(train))
    for index in range(len(train)):
        sample = train.load_raw(index)
        assert (sample["segmentation"] != IGNORE_INDEX).all()
        assert (sample["depth"] > 0).all() and np.isfinite(sample["depth"]).all()
        normals = sample["normals"]
        np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1, atol=1e-5)
        rays = _view_rays(float(cameras.tan_half_fov[index]), SIZE)
        assert ((normals * rays).sum(-1) < 0).all()


def test_floor_normals_and_depth_match_the_camera(train):
    cameras = _cameras(len(train))
    floor = SCENE_CLASSES.index("floor")
    for index in range(len(train)):
        sample = train.load_raw(index)
        on_floor = sample["segmentation"] == floor
        assert on_floor.sum() > 0
        # The world's up axis in camera coordinates; its x component is 0 (no roll).
        up = cameras.axes[index][1]
        assert abs(up[0]) < 1e-6 and up[1] > 0 and up[2] > 0
        np.testing.assert_allclose(
            sample["normals"][on_floor], np.broadcast_to(up, (on_floor.sum(), 3)), atol=1e-5
        )
        # Every floor point lies one camera height below the camera along the up axis.
        rays = _view_rays(float(cameras.tan_half_fov[index]), SIZE)
        points = sample["depth"][..., None] * rays
        height = float(cameras.origin[index, 1])
        np.testing.assert_allclose(points[on_floor] @ up, -height, atol=1e-4)


def test_every_class_appears():
    arrays = generate_scenes(24, SIZE, seed=1)
    assert set(np.unique(arrays["segmentation"])) == set(range(len(SCENE_CLASSES)))


def test_deterministic_and_cached(tmp_path, train):
    first = generate_scenes(8, SIZE)
    for key, value in first.items():
        np.testing.assert_array_equal(value, generate_scenes(8, SIZE)[key])
        np.testing.assert_array_equal(value, train._arrays[key])
    path = train.cache_file
    assert path.is_file() and path.suffix == ".npz"
    reloaded = Scenes(path.parent.parent, size=SIZE, num_images=8)
    for key, value in first.items():
        np.testing.assert_array_equal(value, reloaded._arrays[key])
    # Image i does not depend on how many are generated.
    np.testing.assert_array_equal(generate_scenes(3, SIZE)["image"], first["image"][:3])


def test_train_and_test_differ_and_seeds_differ():
    train = generate_scenes(4, SIZE)
    test = generate_scenes(4, SIZE, split="test")
    other = generate_scenes(4, SIZE, seed=1)
    for index in range(4):
        assert not np.array_equal(train["image"][index], test["image"][index])
        assert not np.array_equal(train["image"][index], other["image"][index])


def test_tasks_select_targets_and_transform_applies(tmp_path):
    data = Scenes(
        tmp_path, split="test", tasks=["depth"], size=16, num_images=2, transform=lambda s: s.keys()
    )
    assert list(data.targets) == ["depth"]
    assert set(data[0]) == {"image", "depth"}
    assert data.cache_file.name.startswith(f"scenes-v{scenes.GENERATOR_VERSION}-test-16px-n2-")
    with pytest.raises(NddrError, match="no target 'edges'"):
        Scenes(tmp_path, tasks=["edges"], size=16, num_images=2)


@pytest.mark.parametrize("content", [b"", b"not a zip file", None])
def test_corrupt_cache_is_regenerated(tmp_path, content):
    data = Scenes(tmp_path, size=16, num_images=2)
    expected = {key: value.copy() for key, value in data._arrays.items()}
    if content is None:  # a readable archive with the wrong arrays
        with open(data.cache_file, "wb") as handle:
            np.savez(handle, **{key: value[:1] for key, value in expected.items()})
    else:
        data.cache_file.write_bytes(content)
    with pytest.warns(UserWarning, match="regenerating"):
        again = Scenes(tmp_path, size=16, num_images=2)
    for key, value in expected.items():
        np.testing.assert_array_equal(value, again._arrays[key])
    with np.load(data.cache_file, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["depth"], expected["depth"])


def test_unwritable_cache_keeps_images_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.warns(UserWarning, match="cannot write the Scenes cache"):
        data = Scenes(blocker, size=16, num_images=1)
    assert data.cache_file is None and "not cached" in data.source(0)
    check_sample(data[0], data.targets, data.source(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "val"}, "unknown Scenes split 'val'"),
        ({"size": 8}, "size 8 is invalid: use an integer >= 16"),
        ({"size": 32.0}, "size 32.0"),
        ({"num_images": 0}, "num_images 0"),
        ({"seed": -1}, "seed -1"),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, message):
    with pytest.raises(NddrError, match=message):
        Scenes(tmp_path, **{"num_images": 1, **kwargs})
    assert not any(tmp_path.iterdir())
