"""Import paths of modules that moved, kept working: ``nddr.engine.trainer`` is ``nddr.training.trainer``.

An old name resolves to the very module object of the new one (not a copy), so classes, module
state and ``monkeypatch`` targets are shared, and model files or scripts that name an old path
keep loading. :data:`MOVED` is the one table of moves; a submodule of a moved package follows its
package (``nddr.fusion.nddr`` -> ``nddr.models.fusion.nddr``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED: dict[str, str] = {
    "nddr.analysis": "nddr.models.analysis",
    "nddr.backbones": "nddr.models.backbones",
    "nddr.config": "nddr.training.config",
    "nddr.engine": "nddr.training",
    "nddr.fusion": "nddr.models.fusion",
    "nddr.heads": "nddr.models.heads",
    "nddr.metrics": "nddr.tasks.metrics",
    "nddr.network": "nddr.models",
    "nddr.network.model": "nddr.models.network",
    "nddr.param_groups": "nddr.training.optimizer",
    "nddr.visualize": "nddr.data.visualize",
}
"""Old module path -> where it lives now."""


def new_name(old: str) -> str | None:
    """Where the module once named ``old`` lives now (``None``: it did not move)."""
    if old in MOVED:
        return MOVED[old]
    package = old
    while "." in package:
        package = package.rpartition(".")[0]
        if package in MOVED:
            return MOVED[package] + old[len(package) :]
    return None


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path and hands out the module at its new path."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        target_name = new_name(fullname)
        if target_name is None:
            return None
        if importlib.util.find_spec(target_name) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, loader_state=target_name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(spec.loader_state)
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system set the alias's spec on the shared module: give it back its own.
        module.__spec__ = module.__spec__.loader_state


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), before the path finder could load a
    second copy of a moved module under its old name."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
