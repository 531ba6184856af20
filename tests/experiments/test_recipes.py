"""`nddr reproduce`: suites plan in dependency order, tables show ours beside the paper, reruns resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from nddr.errors import NddrError
from nddr.reproduce import (
    SUITES,
    find_configs,
)
from nddr.tasks import TASKS, Task
from nddr.training.build import training_network
from nddr.training.config import Config, load_config


def test_configs_folder_is_the_packages_and_the_repositorys_link_points_at_it():
    import nddr

    packaged = Path(nddr.__file__).resolve().parent / "configs"
    assert find_configs() == packaged
    assert (Path(__file__).resolve().parents[2] / "configs").resolve() == packaged


CONFIGS = find_configs()


FILES = sorted(CONFIGS.rglob("*.yaml"))


EXPERIMENTS = [path for path in FILES if not path.stem.endswith("_base")]


FUSED = ("cross_stitch", "sluice", "nddr", "nddr_grouped", "nddr_lowrank")


PAPER_DATA = ("nyuv2", "imdb_wiki")


# The released code's weight decay (tf.nn.l2_loss(w) = sum(w^2) / 2): train_single_task.py adds
# wd * l2_loss, train_multiple_tasks.py 0.5 * wd * l2_loss, with wd = 5e-4.
SINGLE_TASK_DECAY, TWO_TASK_DECAY = 5e-4, 2.5e-4


def relative(path: Path) -> str:
    return path.relative_to(CONFIGS).as_posix()


def folder(path: Path) -> str:
    """The config's top folder below configs/ (its dataset: nyuv2, nyuv2_npy, cpu ...)."""
    return relative(path).split("/")[0]


def suite_configs() -> dict[str, set[bool]]:
    """Every config a suite runs, with whether it starts from the single-task runs."""
    used: dict[str, set[bool]] = {}
    for suite in SUITES.values():
        for row in suite.rows:
            for config in row.configs:
                used.setdefault(config, set()).add(row.init_from_single)
    return used


def test_there_are_configs():
    assert len(FILES) > 40


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_config_validates_and_its_tasks_fit_its_variant(path):
    config = load_config(path)
    tasks = config.data.tasks
    assert tasks, "every config names its tasks"
    if config.model.variant == "single":
        assert len(tasks) == 1
    else:
        assert len(tasks) >= 2
    if config.data.name == "multidigits":
        assert not config.data.flip, "a flip swaps the left and right digits"
    if config.data.name in ("nyuv2", "imdb_wiki"):
        assert config.data.root and config.model.backbone_weights
        assert config.optim.steps == 20000 and config.optim.lr == 1e-3
    assert set(config.optim.loss_weights) <= set(tasks), "a loss weight names a task of the run"
    if config.data.name == "nyuv2":
        assert (config.data.crop_size, config.data.batch_size) == (321, 10)
    assert config.run.eval_every == 0
    assert config.model.init_from is None, "reproduce adds init_from: the paths are per run"


@pytest.mark.parametrize("path", [p for p in EXPERIMENTS if folder(p) in PAPER_DATA], ids=relative)
def test_paper_runs_have_the_released_codes_training_settings(path):
    """Single-task runs as train_single_task.py (normals x10: st_normal.sh, decay 5e-4), two-task
    runs as train_multiple_tasks.py (normals x20, decay 2.5e-4), IMDB-WIKI with equal weights;
    batch norm as its slim layers (decay 0.95, eps 1e-3); the shortcut of the baselines at 1x,
    NDDR-CNN-Shortcut's at the fusion rate."""
    config = load_config(path)
    single = config.model.variant == "single"
    assert config.optim.weight_decay == (SINGLE_TASK_DECAY if single else TWO_TASK_DECAY)
    expected = {}
    if "normals" in config.data.tasks:
        expected = {"normals": 10.0 if single else 20.0}
    assert config.optim.loss_weights == expected
    assert (config.model.bn_momentum, config.model.bn_eps) == (0.05, 1e-3)
    if config.model.shortcut:
        baseline = config.model.variant in ("single", "multi")
        assert config.optim.shortcut_lr_mult == (1.0 if baseline else None)
    else:
        assert config.optim.shortcut_lr_mult is None


def test_every_experiment_config_is_in_a_suite_and_every_suite_config_exists():
    used = suite_configs()
    experiments = {relative(path) for path in EXPERIMENTS}
    assert experiments == set(used)


def test_a_config_starts_from_the_same_weights_in_every_suite():
    for config, flags in suite_configs().items():
        assert len(flags) == 1, f"{config} runs with and without init_from: its runs would mix"
        if flags == {True}:
            assert load_config(CONFIGS / config).model.variant in FUSED


def test_names_are_unique():
    names = [load_config(path).name for path in EXPERIMENTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("suite", SUITES.values(), ids=lambda suite: suite.name)
def test_suite_rows_have_the_suites_tasks(suite):
    for task, config in suite.single.items():
        loaded = load_config(CONFIGS / config)
        assert loaded.model.variant == "single" and loaded.data.tasks == [task]
    for row in suite.rows:
        if row.label == "single_task":
            assert set(row.configs) == set(suite.single.values())
            continue
        for config in row.configs:
            assert load_config(CONFIGS / config).data.tasks == list(suite.tasks)


def test_paper_ablations_change_only_what_their_row_says():
    for row in SUITES["table1"].rows[1:]:
        config = load_config(CONFIGS / row.configs[0])
        init = config.model.fusion_options["init"]
        expected = re.fullmatch(r"init\((.*)\)", row.label).group(1)
        if expected == "xavier":
            assert init == "xavier"
            # experiments/ablation/NDDR_initialization/xavier.sh: --nddr-mult=1000.0
            assert config.optim.fusion_lr_mult == 1000
        else:
            assert init == [float(v) for v in expected.split(";")]
            assert config.optim.fusion_lr_mult == 100
    for row in SUITES["table2"].rows[1:]:
        scale = float(row.label.removeprefix("nddr_lr_scale="))
        assert load_config(CONFIGS / row.configs[0]).optim.fusion_lr_mult == scale


@pytest.mark.parametrize(
    ("suite", "backbone", "shortcut"),
    [
        ("table4", "vgg16_lfov", False),
        ("table5", "resnet101", False),
        ("table6", "vgg16_lfov", True),
        ("tableS1", "alexnet", False),
        ("table7", "vgg16_lfov", False),
    ],
)
def test_a_suites_runs_share_one_backbone_and_head(suite, backbone, shortcut):
    """The single-task configs restate their table's backbone (they start from Table 4's): they
    agree with the two-task ones on everything about the network but its variant."""
    network = {"backbone", "shortcut", "backbone_weights", "backbone_options", "head_options"}
    first = None
    for row in SUITES[suite].rows:
        for config in row.configs:
            model = load_config(CONFIGS / config).model
            assert (model.backbone, model.shortcut) == (backbone, shortcut), config
            settings = model.model_dump(include=network)
            first = first or settings
            assert settings == first, config


def nyuv2_tasks() -> list[Task]:
    return [TASKS["segmentation"]("segmentation", 40), TASKS["normals"]("normals")]


def head_inputs(config: Config, device: str) -> dict[str, tuple[nn.Module, torch.Size]]:
    """Per task, its head and the feature shape it gets from a training crop, in train mode."""
    with torch.device(device):
        network = training_network(config, nyuv2_tasks(), initialise=False)
    seen = {}
    for task, head in network.heads.items():
        head.register_forward_pre_hook(
            lambda module, args, task=task: seen.__setitem__(task, (module, args[0].shape))
        )
    crop = config.data.crop_size
    network.train()
    with torch.no_grad():
        outputs = network(torch.randn(2, 3, crop, crop, device=device))
    assert set(outputs) == {"segmentation", "normals"}
    return seen


@pytest.mark.parametrize("path", [p for p in EXPERIMENTS if folder(p) == "nyuv2"], ids=relative)
def test_a_training_crop_runs_through_the_network_and_every_head_tap_sees_features(path):
    """Meta-device forward of the 321 crop (no memory, no compute): the stages fit the crop, and
    every dilated head conv's outer taps land on the feature map, not only on its padding
    (AlexNet's 9 x 9 map at stride 32 needs dilation 3, not LargeFOV's 12)."""
    config = load_config(path)
    for task, (head, shape) in head_inputs(config, "meta").items():
        height, width = shape[-2:]
        dilated = [m for m in head.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]
        assert dilated, f"{relative(path)}: the {task} head has no spatial conv"
        for conv in dilated:
            assert conv.dilation[0] < min(height, width), (relative(path), task, shape)


def test_alexnet_runs_a_321_crop_for_real():
    """A CPU forward of Table S1's NDDR network: 321 px -> 9 x 9 features at the heads."""
    torch.manual_seed(0)
    config = load_config(CONFIGS / "nyuv2" / "tableS1" / "nddr.yaml")
    seen = head_inputs(config, "cpu")
    assert {task: tuple(shape) for task, (_, shape) in seen.items()} == {
        "segmentation": (2, 256, 9, 9),
        "normals": (2, 256, 9, 9),
    }


def written_out(path: Path) -> dict:
    """The keys ``path`` and its base files set themselves, merged as ``base:`` merges them."""
    own = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    merged = written_out((path.parent / own.pop("base")).resolve()) if "base" in own else {}
    for section, values in own.items():
        if isinstance(values, dict):
            merged.setdefault(section, {}).update(values)
        else:
            merged[section] = values
    return merged


RECIPE = {
    "data": ["tasks", "crop_size", "scale_range", "flip", "batch_size", "workers"],
    "model": ["backbone", "variant", "fusion_options"],
    "optim": ["lr", "steps", "fusion_lr_mult", "classifier_lr_mult", "classifier_bias_lr_mult"],
    "run": ["eval_every", "checkpoint_every", "inspect_every", "channels_last"],
}


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_every_config_writes_out_its_recipe(path):
    """A config states its recipe instead of leaning on the field defaults (the default
    experiment's), so changing the default experiment changes no paper or CPU suite run."""
    files = written_out(path)
    for section, keys in RECIPE.items():
        missing = [key for key in keys if key not in files.get(section, {})]
        assert not missing, f"{relative(path)} leaves {section}.{missing[0]} to the defaults"
    config = load_config(path)
    if config.data.name in PAPER_DATA:
        optim = config.optim
        assert (optim.momentum, optim.poly_power) == (0.9, 0.9)
        assert optim.weight_decay in (SINGLE_TASK_DECAY, TWO_TASK_DECAY)
        assert (optim.classifier_lr_mult, optim.classifier_bias_lr_mult) == (10.0, 20.0), "§4.2"


def test_a_config_is_found_by_path_or_by_name_else_named_in_one_line(tmp_path, monkeypatch):
    from nddr.experiments.recipes import configs_root, resolve_config

    monkeypatch.chdir(tmp_path)
    assert resolve_config("nyuv2/table4/nddr") == configs_root() / "nyuv2/table4/nddr.yaml"
    assert resolve_config("nyuv2/table4/nddr.yaml") == resolve_config("nyuv2/table4/nddr")
    own = tmp_path / "mine.yaml"
    own.write_text("name: mine\n")
    assert resolve_config(own) == own
    with pytest.raises(NddrError, match=r"did you mean nyuv2/table4/nddr\b"):
        resolve_config("nyuv2/table4/nddrr")
    with pytest.raises(NddrError, match=r"config file 'missing.yaml' does not exist"):
        resolve_config("missing.yaml")


MTAN_NPY = {
    "nyuv2_npy": {"size": (288, 384), "batch": 8, "steps": 20000},
    "cityscapes_npy": {"size": (128, 256), "batch": 64, "steps": 9300},
}
"""LibMTL's resolution, batch and 200 epochs in steps, per .npy layout."""


@pytest.mark.parametrize("path", [p for p in EXPERIMENTS if folder(p) in MTAN_NPY], ids=relative)
def test_mtan_npy_configs_take_libmtls_data_recipe_and_network(path):
    """LibMTL's data recipe (whole images, no augmentation, its batch and 200 epochs, equal
    weights, decay 1e-5) on its network (ResNet-50 at output stride 8, ASPP heads)."""
    config = load_config(path)
    layout = MTAN_NPY[folder(path)]
    data, optim, model = config.data, config.optim, config.model
    assert data.name == folder(path)
    assert (data.crop_size, data.scale_range, data.flip) == (None, None, False)
    assert (data.batch_size, optim.steps) == (layout["batch"], layout["steps"])
    assert optim.loss_weights == {} and optim.weight_decay == 1e-5
    assert (model.backbone, model.backbone_options) == ("resnet50", {"output_stride": 8})


@pytest.mark.parametrize("dataset", list(MTAN_NPY))
def test_a_whole_mtan_npy_image_reaches_every_head(dataset):
    """A meta-device forward (no memory, no compute) of a whole image at the layout's size
    through NDDR-CNN-Shortcut, the widest network of the suite, gives every task's output."""
    from nddr.data.base import TargetSpec
    from nddr.tasks import build_tasks

    config = load_config(CONFIGS / dataset / "nddr_shortcut.yaml")
    classes = 13 if dataset == "nyuv2_npy" else 7
    specs = {
        "segmentation": TargetSpec("segmentation", classes),
        "depth": TargetSpec("depth"),
        "normals": TargetSpec("normals"),
    }
    tasks = build_tasks({name: specs[name] for name in config.data.tasks})
    with torch.device("meta"):
        network = training_network(config, tasks, initialise=False)
        outputs = network(torch.randn(2, 3, *MTAN_NPY[dataset]["size"]))
    assert set(outputs) == set(config.data.tasks)
    assert outputs["segmentation"].shape[1] == classes
