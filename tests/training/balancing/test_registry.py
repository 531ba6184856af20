"""The balancing registry: every method listed once, bad names and options are one-line errors."""

import pytest

from nddr.errors import NddrError
from nddr.training.balancing.base import Balancer
from nddr.training.balancing.registry import (
    BALANCING,
    DEFAULT_BALANCING,
    balancing_options,
    check_balancing,
)
from nddr.training.config import build_config, config_reference


def test_every_entry_names_a_balancer_class_and_the_default_is_fixed():
    assert next(iter(BALANCING)) == DEFAULT_BALANCING == "fixed"
    for entry in BALANCING.values():
        assert issubclass(entry.balancer_class(), Balancer)
        assert entry.balancer_class().gradient_based is entry.gradient_based
    from torchjd import aggregation

    for entry in BALANCING.values():
        if entry.gradient_based:
            assert hasattr(aggregation, entry.aggregator), entry.name
    assert build_config({}).optim.balancing == "fixed"


def test_an_unknown_method_is_one_line_listing_the_methods():
    with pytest.raises(NddrError) as raised:
        build_config({}, ["optim.balancing=upgard"])
    message = str(raised.value)
    assert "\n" not in message
    assert "did you mean 'upgrad'?" in message
    assert f"choose one of {', '.join(BALANCING)}" in message


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (["optim.balancing_options={T: 2}"], "fixed has no option 'T': it takes none"),
        (
            ["optim.balancing=dwa", "optim.balancing_options={temp: 2}"],
            "dwa has no option 'temp': it takes temperature, window",
        ),
        (
            ["optim.balancing=dwa", "optim.balancing_options={temperature: hot}"],
            "optim.balancing_options.temperature = 'hot' is not a number",
        ),
        (
            ["optim.balancing=dwa", "optim.balancing_options={window: 2.5}"],
            "optim.balancing_options.window = 2.5 is not a number",
        ),
        (["optim.balancing=[upgrad]"], "optim.balancing ['upgrad'] is not a name"),
        (
            ["model.variant=single", "optim.balancing=upgrad"],
            "model.variant=single shares none: use fixed, uncertainty or dwa",
        ),
        (
            ["optim.balancing=mgda", "run.compile=true"],
            "optim.balancing=mgda differentiates through torch.vmap, which does not run on a "
            "compiled network: set run.compile=false",
        ),
    ],
)
def test_bad_options_are_one_line_errors(overrides, problem):
    with pytest.raises(NddrError) as raised:
        build_config({}, overrides)
    assert problem in str(raised.value) and "\n" not in str(raised.value)


def test_options_fill_in_the_defaults():
    assert balancing_options("dwa", {"window": 10}) == {"temperature": 2.0, "window": 10}
    assert balancing_options("cagrad", {}) == {"c": 0.5}
    check_balancing("uncertainty", {"init": 1})  # an int where the default is a float
    config = build_config({}, ["model.variant=single", "optim.balancing=dwa"])
    assert config.optim.balancing == "dwa"


def test_the_config_reference_lists_the_methods():
    reference = config_reference()
    assert '| `optim.balancing` | `"fixed"` |' in reference
    assert ", ".join(BALANCING) in reference
