import sys
import types

import pytest

from nddr.lazy import lazy_exports


def test_a_lazy_name_loads_its_module_once_and_unknown_names_raise(monkeypatch):
    package = types.ModuleType("lazy_example")
    monkeypatch.setitem(sys.modules, "lazy_example", package)
    package.__getattr__ = lazy_exports("lazy_example", {"sqrt": "math"})
    assert "sqrt" not in vars(package)
    assert package.sqrt(9.0) == 3.0
    assert "sqrt" in vars(package)
    with pytest.raises(AttributeError, match="module 'lazy_example' has no attribute 'cbrt'"):
        package.cbrt  # noqa: B018
