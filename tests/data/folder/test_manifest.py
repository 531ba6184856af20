"""The dataset.yaml schema: every target kind, and one-line errors naming the bad key."""

import pytest
import yaml

from nddr.data.conventions import TargetKind
from nddr.data.folder.manifest import (
    MANIFEST_KINDS,
    dump_manifest,
    load_manifest,
    parse_manifest,
)
from nddr.errors import NddrError
from tests.data.folder.test_dataset import MANIFEST


def _with(path: str, value) -> dict:
    """MANIFEST with the dotted key ``path`` set to ``value``."""
    manifest = yaml.safe_load(yaml.safe_dump(MANIFEST))
    *parents, last = path.split(".")
    node = manifest
    for part in parents:
        node = node[part]
    node[last] = value
    return manifest


def test_every_target_kind_can_be_described():
    assert set(MANIFEST_KINDS) == set(TargetKind)


def test_a_manifest_reads_back_from_its_dump(tmp_path):
    manifest = parse_manifest(MANIFEST, "m")
    path = tmp_path / "dataset.yaml"
    path.write_text(dump_manifest(manifest))
    assert load_manifest(path) == manifest
    assert manifest.tasks["depth"].scale == 0.001 and manifest.tasks["normals"].invalid == (0, 0, 0)
    assert next(iter(yaml.safe_load(path.read_text())["tasks"]["depth"])) == "kind"


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("tasks.depth.scael", 0.001, "unknown key 'tasks.depth.scael': did you mean 'scale'?"),
        ("splits.sead", 1, "unknown key 'splits.sead': did you mean 'seed'?"),
        ("imagez", "rgb", "unknown key 'imagez': did you mean 'images'?"),
        ("tasks.depth.kind", "height", "tasks.depth.kind must be one of segmentation, normals"),
        ("tasks.depth.encoding", "exr", "tasks.depth.encoding: Input should be 'png16' or 'npy'"),
        ("tasks.segmentation.file", "seg/{name}.png", "holds {stem} and no other braces"),
        ("tasks.segmentation.classes", 300, "tasks.segmentation.classes: Input should be less"),
        ("tasks.animal.class_names", ["cat"], "1 class_names for 2 classes"),
        ("table", None, "task 'animal' reads a column of the table: add table"),
        ("splits", {"train": "a.txt"}, "give both train and test"),
        ("splits", {}, "give train and test (list files or folders), or test_fraction"),
        ("splits", {"train": "a", "test": "b", "test_fraction": 0.5}, "not both"),
        ("splits.test_fraction", 1.5, "splits.test_fraction: Input should be less than 1"),
        ("tasks", {}, "tasks: Dictionary should have at least 1 item"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_the_key(key, value, fragment):
    with pytest.raises(NddrError) as error:
        parse_manifest(_with(key, value), "root/dataset.yaml")
    message = str(error.value)
    assert message.startswith("manifest 'root/dataset.yaml': ") and "\n" not in message
    assert fragment in message, message


def test_a_missing_or_unparsable_manifest(tmp_path):
    path = tmp_path / "dataset.yaml"
    with pytest.raises(NddrError, match="does not exist: write one with `nddr data init"):
        load_manifest(path)
    path.write_text("tasks: [unclosed\n")
    with pytest.raises(NddrError, match=r"is not valid UTF-8 YAML \(line 2\)"):
        load_manifest(path)
    path.write_text("- a list\n")
    with pytest.raises(NddrError, match="must hold a mapping with tasks and splits"):
        load_manifest(path)
