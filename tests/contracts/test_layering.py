"""The data layer stands below tasks, networks and the engine: none of its modules imports them."""

import ast
from pathlib import Path

import pytest

import nddr.data
from nddr.data.base import MultiTaskDataset
from nddr.data.conventions import SPLITS, TargetKind
from nddr.errors import NddrError

DATA = Path(nddr.data.__file__).parent


HIGHER = ("nddr.tasks", "nddr.training", "nddr.models", "nddr.cli", "nddr.reproduce")


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted(DATA.rglob("*.py")), ids=lambda path: path.relative_to(DATA).as_posix()
)
def test_data_modules_import_no_higher_layer(path):
    higher = [name for name in _imported(path) if name.startswith(HIGHER)]
    assert not higher, f"{path.relative_to(DATA)} imports {higher}"


def test_every_dataset_checks_splits_in_the_base():
    for entry in nddr.data.DATASETS.values():
        assert issubclass(entry.dataset, MultiTaskDataset)
        assert "check_split" not in vars(entry.dataset)
    for split in SPLITS:
        MultiTaskDataset.check_split(split)
    with pytest.raises(
        NddrError, match="unknown MultiTaskDataset split 'tset': did you mean 'test'"
    ):
        MultiTaskDataset.check_split("tset")


def test_target_kinds_say_which_are_dense():
    dense = [kind for kind in TargetKind if kind.dense]
    assert dense == ["segmentation", "normals", "depth", "saliency"]
    assert [kind for kind in TargetKind if not kind.dense] == [
        "classification",
        "age",
        "regression",
    ]
    assert f"{TargetKind.AGE}" == "age" and TargetKind("normals") is TargetKind.NORMALS
