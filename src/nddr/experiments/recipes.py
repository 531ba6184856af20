"""The paper's recipes shipped with the package: its ``configs/`` folder, and configs by name.

``nddr train nyuv2/table4/nddr`` and ``nddr reproduce`` read the configs installed with the
package (``nddr/configs/``, package data), so they work from any folder after ``pip install``;
the repository's top-level ``configs`` is a link to the same folder.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from nddr.errors import NddrError

if TYPE_CHECKING:
    from nddr.io import PathLike

DEFAULT_OUT = "runs/reproduce"
"""Where ``nddr reproduce`` puts its runs and tables unless given ``--out``."""


def configs_root() -> Path:
    """The package's configs folder (``nddr/configs``)."""
    root = Path(str(resources.files("nddr").joinpath("configs")))
    if not root.is_dir():
        raise NddrError(
            f"the nddr package has no configs folder at {str(root)!r}: reinstall nddr from a wheel "
            "or a clone (pip install .), or pass --configs DIR"
        )
    return root


def find_configs(configs: PathLike | None = None) -> Path:
    """The configs folder: ``configs`` if given, else the package's (:func:`configs_root`)."""
    if configs is None:
        return configs_root()
    if not Path(configs).is_dir():
        raise NddrError(
            f"no configs folder at {str(configs)!r}: pass --configs DIR (a folder of configs "
            "laid out as the package's nddr/configs), or leave it out for the package's"
        )
    return Path(configs)


def config_names(root: PathLike | None = None) -> list[str]:
    """Every config of the package (or of ``root``) by name: its path below it without .yaml."""
    base = find_configs(root)
    return sorted(
        path.relative_to(base).with_suffix("").as_posix() for path in base.rglob("*.yaml")
    )


def resolve_config(name: PathLike) -> Path:
    """The file of a config given by path or by name: a path that exists wins, else the
    package's config of that name (``nyuv2/table4/nddr``, with or without ``.yaml``).

    A name that is neither is a one-line error listing the closest names.
    """
    path = Path(name)
    if path.is_file():
        return path
    root = configs_root()
    relative = path.as_posix().removesuffix(".yaml")
    packaged = root / f"{relative}.yaml"
    if not path.is_absolute() and packaged.is_file():
        return packaged
    if path.is_absolute() or path.suffix in (".yaml", ".yml"):
        raise NddrError(
            f"config file {str(name)!r} does not exist: check the path, or give a config name "
            "below nddr/configs without .yaml (e.g. nyuv2/table4/nddr)"
        )
    names = config_names(root)
    close = difflib.get_close_matches(relative, names, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise NddrError(
        f"config {str(name)!r} is neither a file nor a config of the package: {hint}give a .yaml "
        "path, or a name below nddr/configs without .yaml (e.g. nyuv2/table4/nddr)"
    )
