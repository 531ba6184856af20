"""Preflight: an unwritable run folder, a full disk or a bad sample fails before the first step."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nddr.data import build_dataset
from nddr.data.base import MultiTaskDataset
from nddr.errors import NddrError
from nddr.tasks import build_tasks
from nddr.training import preflight as preflight_module
from nddr.training.build import training_network, training_set
from nddr.training.config import build_config
from nddr.training.preflight import checkpoint_bytes, preflight, sample_indices
from tests.data.test_nyuv2 import make_nyudmt
from tests.helpers import TINY, tiny_config

MIB = 1 << 20


def parts(config):
    """What the trainer hands to preflight: train set, test set and the bare network."""
    data = config.data
    train_set = training_set(config)
    test_set = build_dataset(data.name, data.root, "test", tasks=data.tasks, **data.options)
    tasks = build_tasks(train_set.dataset.targets, config.optim.loss_weights)
    return train_set, test_set, training_network(config, tasks)


def random_states():
    return random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state()


def test_a_sound_run_passes_and_leaves_only_the_folder(tmp_path):
    config = tiny_config(tmp_path)
    train_set, test_set, network = parts(config)
    before = random_states()
    preflight(config, train_set, test_set, network)
    after = random_states()
    assert before[:2] == after[:2] and torch.equal(before[2], after[2])
    assert config.run_dir.is_dir() and list(config.run_dir.iterdir()) == []


def test_sample_indices_are_first_last_and_spread():
    assert sample_indices(0) == []
    assert sample_indices(1) == [0]
    assert sample_indices(3) == [0, 1, 2]
    assert sample_indices(10) == [0, 3, 6, 9]
    assert sample_indices(1000) == sample_indices(1000)


def _unwritable(tmp_path: Path, case: str) -> list[str]:
    """Overrides whose run folder root cannot write to, even though tests run as root."""
    if case == "proc":
        return ["run.out=/proc/nddr-runs"]
    if case == "existing-proc":
        return ["run.out=/", "name=proc"]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return [f"run.out={blocker}"]


@pytest.mark.parametrize("case", ["proc", "existing-proc", "under-a-file"])
def test_an_unwritable_run_folder_is_named(tmp_path, case):
    config = tiny_config(tmp_path, *_unwritable(tmp_path, case))
    train_set, test_set, _ = parts(config)
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, nn.Linear(2, 2))
    message = str(raised.value)
    assert f"run folder '{config.run_dir}' is not writable (" in message
    assert message.endswith("pass run.out= a writable folder") and "\n" not in message


def test_a_full_disk_names_free_and_needed_space(tmp_path, monkeypatch):
    config = tiny_config(tmp_path)
    train_set, test_set, _ = parts(config)
    network = nn.Linear(1000, 1000)  # 1001000 floats: 4.0 MB of weights
    monkeypatch.setattr(preflight_module, "free_bytes", lambda path: 20 * MIB)
    size = checkpoint_bytes(network)
    assert size == round(2.2 * 1001000 * 4)
    # keep_checkpoints=5 (TINY): 6 at once while the newest is written, 6 x 8.4 MiB + 16 MiB.
    needed = 6 * size + 16 * MIB
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, network)
    message = str(raised.value)
    assert f"run folder '{config.run_dir}' has 20.0 MiB free" in message
    assert f"the run needs {needed / MIB:.1f} MiB" in message
    assert "free space, or set run.out=" in message
    monkeypatch.setattr(preflight_module, "free_bytes", lambda path: needed)
    preflight(config, train_set, test_set, network)


class Broken(MultiTaskDataset):
    """A test split whose sample ``bad`` raises a plain (non-nddr) exception."""

    def __init__(self, base: MultiTaskDataset, bad: int) -> None:
        super().__init__(base.transform)
        self.base, self.bad = base, bad
        self.targets, self.split = base.targets, base.split

    def __len__(self) -> int:
        return len(self.base)

    def load_raw(self, index: int):
        if index == self.bad:
            raise ValueError("bad header in frame\nsecond line")
        return self.base.load_raw(index)


def test_a_sample_that_fails_to_load_names_split_index_and_the_check(tmp_path):
    config = tiny_config(tmp_path)
    train_set, test_set, _ = parts(config)
    bad = sample_indices(len(test_set))[-1]
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, Broken(test_set, bad), nn.Linear(2, 2))
    assert str(raised.value) == (
        f"dataset scenes sample {bad} of split test (Broken[{bad}]) could not be loaded "
        "(ValueError: bad header in frame): run `nddr data check scenes --split test "
        "--tasks segmentation,normals --set size=32 --set num_images=24`"
    )


def test_a_truncated_nyuv2_image_is_named(tmp_path):
    root = make_nyudmt(tmp_path / "nyu")
    image = root / "images" / "0004.png"
    image.write_bytes(image.read_bytes()[:40])
    config = build_config(
        TINY,
        [
            f"run.out={tmp_path / 'runs'}",
            "data.name=nyuv2",
            f"data.root={root}",
            "data.tasks=[segmentation, normals, depth]",
            "data.options={}",
            "data.crop_size=4",
            "data.batch_size=2",
        ],
    )
    train_set = training_set(config)
    test_set = build_dataset("nyuv2", root, "test")
    assert Image.open(root / "images" / "0001.jpg").size == (8, 6)
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, nn.Linear(2, 2))
    message = str(raised.value)
    assert message.startswith("dataset nyuv2 split train sample 2: ")
    assert f"{image}" in message and "cannot be decoded" in message


class Partial(MultiTaskDataset):
    """A dataset that ignores ``tasks`` and has segmentation only."""

    def __init__(self, base: MultiTaskDataset) -> None:
        super().__init__()
        self.base, self.split = base, base.split
        self.targets = {"segmentation": base.targets["segmentation"]}

    def __len__(self) -> int:
        return len(self.base)

    def load_raw(self, index: int):
        return self.base.load_raw(index)


def test_a_dataset_without_a_configured_task_fails(tmp_path):
    config = tiny_config(tmp_path)
    train_set, test_set, _ = parts(config)
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, Partial(test_set), nn.Linear(2, 2))
    assert str(raised.value) == (
        "dataset scenes split test has no target 'normals' (data.tasks): it has segmentation; "
        "fix data.tasks"
    )


def test_samples_missing_a_configured_task_fail(tmp_path):
    config = tiny_config(tmp_path)
    train_set, test_set, _ = parts(config)
    test_set.transform = lambda sample: {"image": sample["image"], "segmentation": 0}
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, nn.Linear(2, 2))
    message = str(raised.value)
    assert message.startswith("dataset scenes sample 0 of split test (scenes[test 0]")
    assert "has no 'normals' target: run `nddr data check scenes --split test" in message


@pytest.mark.parametrize("case", ["proc", "under-a-file"])
def test_train_refuses_an_unwritable_run_folder_before_any_step(tmp_path, case):
    """Through the real CLI: one line on stderr, exit status 2, no traceback."""
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(TINY))
    command = [sys.executable, "-m", "nddr", "train", str(config), *_unwritable(tmp_path, case)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "nddr train: error: run folder '" in completed.stderr
    assert "is not writable" in completed.stderr and "Traceback" not in completed.stderr


def test_a_crop_larger_than_the_scaled_images_is_named(tmp_path):
    # Scenes images are 32 px here; scaled by at most 1.5 they fill a crop of 48.
    config = tiny_config(tmp_path, "data.crop_size=49")
    train_set, test_set, network = parts(config)
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, network)
    assert str(raised.value) == (
        "data.crop_size 49 is larger than the scenes train images can fill: sample 0 is 32 x 32, "
        "at most 48 px a side after scaling by 1.5 (the top of data.scale_range); set "
        "data.crop_size <= 48 or null"
    )
    config = tiny_config(tmp_path, "data.crop_size=33", "data.scale_range=null")
    train_set, test_set, network = parts(config)
    with pytest.raises(NddrError, match="at most 32 px a side after scaling by 1 "):
        preflight(config, train_set, test_set, network)
    config = tiny_config(tmp_path, "data.crop_size=48")
    preflight(config, *parts(config))


def test_a_batch_norm_left_one_value_per_channel_is_named(tmp_path):
    """A micro-batch of one 8 px crop reaches the tiny backbone's stride-8 stages as 1 x 1."""
    one_image_of_8_px = ["data.batch_size=2", "optim.accumulate=2", "data.crop_size=8"]
    config = tiny_config(tmp_path, *one_image_of_8_px)
    train_set, test_set, network = parts(config)
    weights = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, network.eval())
    message = str(raised.value)
    assert message.startswith("a batch norm of the network would see one value per channel: ")
    assert "micro-batch is 1 image(s) (data.batch_size 2 over processes x optim.accumulate)" in (
        message
    )
    assert "of 8 x 8 px (data.crop_size)" in message and "\n" not in message
    assert message.endswith("raise data.batch_size or data.crop_size, or set model.freeze_bn=true")
    assert not network.training, "the network's modes are left as they were"
    assert all(torch.equal(weights[name], tensor) for name, tensor in network.state_dict().items())
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        network.train()(torch.rand(1, 3, 8, 8))
    for fix in (["data.crop_size=16"], ["optim.accumulate=1"], ["model.freeze_bn=true"]):
        config = tiny_config(tmp_path, *one_image_of_8_px, *fix)
        preflight(config, *parts(config))


def test_loss_weights_that_train_nothing_are_named(tmp_path):
    config = tiny_config(tmp_path, "optim.loss_weights={segmentation: 0, normals: 0}")
    train_set, test_set, network = parts(config)
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, network)
    assert str(raised.value) == (
        "optim.loss_weights gives every task (segmentation, normals) weight 0, so nothing would "
        "be trained: give at least one task a weight > 0"
    )
    config = tiny_config(tmp_path, "optim.loss_weights={segmentation: 0}")
    preflight(config, *parts(config))


def test_whole_images_of_different_sizes_in_one_micro_batch_are_named(tmp_path):
    config = tiny_config(tmp_path, "data.crop_size=null")
    train_set, test_set, network = parts(config)
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, network)
    assert str(raised.value) == (
        "data.crop_size null keeps each image at its random scale (data.scale_range [0.5, 1.5]), "
        "so micro-batches of 8 images cannot be stacked: set data.crop_size, or "
        "data.scale_range=null"
    )
    for fix in (["data.scale_range=null"], ["data.batch_size=2", "optim.accumulate=2"]):
        config = tiny_config(tmp_path, "data.crop_size=null", *fix)
        preflight(config, *parts(config))


class FirstSmaller(MultiTaskDataset):
    """A dataset whose sample 0 is cut to 24 x 20 pixels, the others as they are."""

    def __init__(self, base: MultiTaskDataset) -> None:
        super().__init__(base.transform)
        self.base, self.split, self.targets = base, base.split, base.targets

    def __len__(self) -> int:
        return len(self.base)

    def load_raw(self, index: int):
        sample = self.base.load_raw(index)
        if index:
            return sample
        return {
            key: value[:24, :20] if np.ndim(value) >= 2 else value for key, value in sample.items()
        }


def test_images_of_different_sizes_without_a_crop_are_named(tmp_path):
    config = tiny_config(tmp_path, "data.crop_size=null", "data.scale_range=null")
    train_set, test_set, network = parts(config)
    train_set.dataset = FirstSmaller(train_set.dataset)
    with pytest.raises(NddrError) as raised:
        preflight(config, train_set, test_set, network)
    assert str(raised.value) == (
        "data.crop_size null batches whole images, but scenes train sample 0 is 24 x 20 and "
        "sample 8 32 x 32: set data.crop_size"
    )
