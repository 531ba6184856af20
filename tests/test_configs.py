"""The experiment configs of `configs/`: every one validates and says what its table row means."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from nddr.config import load_config
from nddr.reproduce import SUITES, find_configs

CONFIGS = find_configs()
FILES = sorted(CONFIGS.rglob("*.yaml"))
FUSED = ("cross_stitch", "sluice", "nddr")


def relative(path: Path) -> str:
    return path.relative_to(CONFIGS).as_posix()


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
        if not path.stem.endswith("_base"):
            paper = {"normals": 20.0} if "normals" in tasks else {}
            assert config.optim.loss_weights == paper, "§4: segmentation CE + 20 x normal loss"
    assert config.run.eval_every == 0
    assert config.model.init_from is None, "reproduce adds init_from: the paths are per run"


def test_every_experiment_config_is_in_a_suite_and_every_suite_config_exists():
    used = suite_configs()
    experiments = {relative(path) for path in FILES if not path.stem.endswith("_base")}
    assert experiments == set(used)


def test_a_config_starts_from_the_same_weights_in_every_suite():
    for config, flags in suite_configs().items():
        assert len(flags) == 1, f"{config} runs with and without init_from: its runs would mix"
        if flags == {True}:
            assert load_config(CONFIGS / config).model.variant in FUSED


def test_names_are_unique():
    experiments = [path for path in FILES if not path.stem.endswith("_base")]
    names = [load_config(path).name for path in experiments]
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
        init = load_config(CONFIGS / row.configs[0]).model.fusion_options["init"]
        expected = re.fullmatch(r"init\((.*)\)", row.label).group(1)
        if expected == "xavier":
            assert init == "xavier"
        else:
            assert init == [float(v) for v in expected.split(";")]
    for row in SUITES["table2"].rows[1:]:
        scale = float(row.label.removeprefix("nddr_lr_scale="))
        assert load_config(CONFIGS / row.configs[0]).optim.fusion_lr_mult == scale
    for suite, backbone, shortcut in [
        ("table4", "vgg16_lfov", False),
        ("table5", "resnet101", False),
        ("table6", "vgg16_lfov", True),
        ("table7", "vgg16_lfov", False),
    ]:
        for row in SUITES[suite].rows:
            for config in row.configs:
                model = load_config(CONFIGS / config).model
                assert (model.backbone, model.shortcut) == (backbone, shortcut), config


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
    if config.data.name in ("nyuv2", "imdb_wiki"):
        optim = config.optim
        assert (optim.momentum, optim.weight_decay, optim.poly_power) == (0.9, 5e-4, 0.9)
        assert (optim.classifier_lr_mult, optim.classifier_bias_lr_mult) == (10.0, 20.0), "§4.2"
