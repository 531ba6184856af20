import pytest

from nddr.config import DEFAULT_EXPERIMENT, Config, build_config, config_reference, load_config
from nddr.errors import NddrError


def test_defaults_are_the_papers_recipe():
    config = Config()
    assert (config.optim.lr, config.optim.momentum, config.optim.poly_power) == (1e-3, 0.9, 0.9)
    assert (config.optim.weight_decay, config.optim.fusion_lr_mult) == (5e-4, 100.0)
    assert (config.optim.classifier_lr_mult, config.optim.classifier_bias_lr_mult) == (10.0, 20.0)
    assert (config.data.crop_size, config.data.batch_size, config.optim.steps) == (321, 10, 20000)
    assert build_config(DEFAULT_EXPERIMENT).model.backbone == "tiny"


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
    ],
)
def test_bad_keys_and_values_are_one_line_errors(overrides, message):
    with pytest.raises(NddrError) as error:
        build_config({}, overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


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
