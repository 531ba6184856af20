import json

import pytest

from nddr.errors import NddrError
from nddr.training.config import Config, build_config, config_reference, load_config


def test_the_defaults_are_the_default_experiment(tmp_path):
    """One default: the field defaults, an empty YAML file and no config are one experiment."""
    config = Config()
    assert (config.model.backbone, config.model.variant, config.data.name) == (
        "tiny",
        "nddr",
        "scenes",
    )
    assert (config.data.crop_size, config.data.batch_size, config.optim.steps) == (64, 16, 1000)
    assert (config.optim.lr, config.optim.fusion_lr_mult) == (0.05, 2.0)
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(tmp_path / "empty.yaml") == config == load_config(None) == build_config()


def test_the_reference_shows_the_defaults_the_run_uses():
    defaults = Config().to_dict()
    reference = config_reference()
    for section in ("data", "model", "optim", "run"):
        for key, value in defaults[section].items():
            assert f"| `{section}.{key}` | `{json.dumps(value)}` |" in reference


@pytest.mark.parametrize("name", ["nyuv2", "multidigits", "imdb_wiki"])
def test_the_default_datasets_options_and_tasks_stay_with_it(name):
    data = build_config({}, [f"data.name={name}", "data.root=somewhere"]).data
    assert (data.options, data.tasks) == ({}, None)
    given = build_config(
        {}, [f"data.name={name}", "data.options={image_size: 9}", "data.tasks=[a]"]
    )
    assert (given.data.options, given.data.tasks) == ({"image_size": 9}, ["a"])
    assert build_config({}, ["data.name=scenes"]).data.options == {"size": 64}


def test_overrides_parse_yaml_values():
    config = build_config(
        {}, ["optim.steps=7", "model.fusion_options={init: [1.0, 0.0]}", "data.tasks=[a, b]"]
    )
    assert config.optim.steps == 7
    assert config.model.fusion_options == {"init": [1.0, 0.0]}
    assert config.data.tasks == ["a", "b"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.stepz=3"], "unknown key 'optim.stepz': did you mean 'optim.steps'?"),
        (["modle.variant=nddr"], "unknown key 'modle': did you mean 'model"),
        (["model.variant=ndr"], "model.variant = 'ndr' is not valid"),
        (["optim.lr=-1"], "optim.lr = -1 is not valid"),
        (["run.device=tpu"], "run.device = 'tpu' is not valid"),
        (["optim.steps"], "is not key=value"),
        (["optim.steps.x=3"], "override 'optim.steps.x': 'steps' is not a section"),
        (["optim.momentum=1"], "optim.momentum = 1 is not valid (Input should be less than 1)"),
    ],
)
def test_bad_keys_and_values_are_one_line_errors(overrides, message):
    with pytest.raises(NddrError) as error:
        build_config({}, overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.momentum=1.0", "optim.momentum = 1.0 is not valid (Input should be less than 1)"),
        ("optim.lr=.inf", "optim.lr = inf is not valid (Input should be a finite number)"),
        ("optim.poly_power=.nan", "optim.poly_power = nan is not valid (Input should be a finite"),
        ("optim.grad_clip=0", "optim.grad_clip = 0 is not valid (Input should be greater than 0)"),
        ("optim.loss_weights={normals: -1}", "(the weight of 'normals' is negative: use a weight"),
        ("optim.loss_weights={normals: .inf}", "optim.loss_weights.normals = inf is not valid"),
        (
            "optim.task_options={normals: encoded}",
            "optim.task_options.normals = 'encoded' is not valid (Input should be a valid dict",
        ),
        ("data.scale_range=[1.5, 0.5]", "(use [lo, hi] with 0 < lo <= hi, e.g. [0.5, 1.5], or"),
        ("data.scale_range=[0, 1]", "data.scale_range = [0, 1] is not valid (use [lo, hi]"),
        ("data.scale_range=[0.5, .nan]", "data.scale_range.1 = nan is not valid"),
        (f"run.seed={2**64}", "run.seed = 18446744073709551616 is not valid (Input should be less"),
        (
            "model.fusion_options={init: [0.9, 0.1, 0]}",
            "model.fusion_options = {'init': [0.9, 0.1, 0]} is not valid (NDDR init takes "
            "(alpha, beta), two finite numbers such as [0.9, 0.1], or 'xavier'; got [0.9, 0.1, 0])",
        ),
        ("model.fusion_options={init: [.nan, 0]}", "NDDR init takes (alpha, beta), two finite"),
        ("model.fusion_options={alpha: 1}", "(NDDR takes no option 'alpha'; it takes init, "),
        ("model.backbone_options={depth: 3}", "(backbone 'tiny' has no option 'depth': it takes"),
        ("model.backbone_options={width: 0}", "option width is a positive integer (default 16)"),
        (
            "model.head_options={fcn: {}}",
            "(there is no head 'fcn': heads are lfov, aspp, classifier)",
        ),
        ("model.head_options={lfov: {depth: 2}}", "(head 'lfov' has no option 'depth'; it takes"),
        ("model.head_options={lfov: {dropout: 1.5}}", "dropout = 1.5 is not valid: use a probab"),
        ("model.head_options={lfov: {width: 0}}", "width = 0 is not valid: use a positive integer"),
        ("model.head_options={aspp: {dilations: []}}", "use a non-empty list of positive integers"),
    ],
)
def test_values_that_would_train_something_else_are_refused(override, message):
    with pytest.raises(NddrError) as error:
        build_config({}, [override])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_fusion_options_must_fit_the_variant():
    with pytest.raises(NddrError) as error:
        build_config({}, ["model.variant=cross_stitch", "model.fusion_options={init: xavier}"])
    assert str(error.value) == (
        "config: model.fusion_options = {'init': 'xavier'} is not valid (CrossStitch init takes "
        "(alpha, beta), two finite numbers such as [0.9, 0.1] (xavier is NDDR's only); got "
        "'xavier')"
    )
    with pytest.raises(NddrError, match="variant 'single' has no fusion layers, so fusion option"):
        build_config({}, ["model.variant=single", "model.fusion_options={init: [1, 0]}"])
    # A base file shared with the fused variants may give the fusions' defaults.
    single = build_config({}, ["model.variant=multi", "model.fusion_options={init: [0.9, 0.1]}"])
    assert single.model.fusion_options == {"init": [0.9, 0.1]}
    assert build_config({}, ["model.fusion_options={init: xavier}"]).model.fusion_options


def test_yaml_files_inherit_from_a_base(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "data:\n  name: multidigits\n  batch_size: 4\noptim:\n  steps: 9\n"
    )
    (tmp_path / "run.yaml").write_text("base: base.yaml\nname: child\noptim:\n  lr: 0.5\n")
    config = load_config(tmp_path / "run.yaml", ["data.batch_size=8"])
    assert (config.name, config.data.name, config.data.batch_size) == ("child", "multidigits", 8)
    assert (config.optim.steps, config.optim.lr) == (9, 0.5)
    (tmp_path / "broken.yaml").write_text("data: [unclosed\n")
    with pytest.raises(NddrError, match="not valid YAML line"):
        load_config(tmp_path / "broken.yaml")
    with pytest.raises(NddrError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_reference_lists_every_key():
    reference = config_reference()
    for key in ("data.crop_size", "model.init_from", "optim.fusion_lr_mult", "run.amp"):
        assert f"`{key}`" in reference
