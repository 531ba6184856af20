"""Old module paths resolve to the very modules they moved to."""

import importlib
import subprocess
import sys

import pytest

from nddr.compat import MOVED, new_name


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_path_is_the_new_module(old, new):
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__spec__.name == new


def test_submodule_of_a_moved_package_follows_it():
    assert new_name("nddr.fusion.nddr") == "nddr.models.fusion.nddr"
    assert new_name("nddr.engine.trainer") == "nddr.training.trainer"
    assert new_name("nddr.network.model") == "nddr.models.network"
    assert new_name("nddr.training.trainer") is None
    from nddr.engine.trainer import Trainer

    from nddr.training.trainer import Trainer as MovedTrainer

    assert Trainer is MovedTrainer


def test_patching_through_the_old_path_patches_the_new_module(monkeypatch):
    import nddr.param_groups

    import nddr.training.optimizer

    monkeypatch.setattr(nddr.param_groups, "marker", 42, raising=False)
    assert nddr.training.optimizer.marker == 42


def test_old_path_imported_first_loads_the_module_once():
    code = (
        "import sys, nddr.engine.checkpoint as old; import nddr.training.checkpoint as new; "
        "print(old is new, sys.modules['nddr.engine.checkpoint'] is new)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True"]


def test_unknown_old_submodule_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("nddr.engine.no_such_module")
