"""``build_dataset``: datasets by catalogue name, and a user's own class as ``module:Class``."""

import sys
import textwrap

import pytest

from nddr.data import DATASETS, build_dataset, user_dataset
from nddr.errors import NddrError

USER_MODULE = '''
import numpy as np

from nddr.data.base import MultiTaskDataset, TargetSpec


class Stripes(MultiTaskDataset):
    """Vertical stripes: the class of a pixel is its column modulo ``classes``."""

    def __init__(self, root, split="train", transform=None, tasks=None, *, count=3, classes=2):
        super().__init__(transform)
        self.check_split(split)
        self.root, self.split, self.count = root, split, count
        self.targets = {"stripes": TargetSpec("segmentation", classes)}
        self.select_targets(tasks)
        self.classes = classes

    def __len__(self):
        return self.count

    def load_raw(self, index):
        image = np.full((8, 8, 3), index, np.uint8)
        return {"image": image, "stripes": (np.arange(8)[None].repeat(8, 0) % self.classes).astype(np.uint8)}


not_a_class = 3
'''


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    package = tmp_path / "mylab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "data.py").write_text(textwrap.dedent(USER_MODULE))
    (package / "broken.py").write_text("import nonexistent_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "mylab.data"
    for module in [name for name in sys.modules if name.split(".")[0] == "mylab"]:
        del sys.modules[module]


def test_a_user_class_is_built_with_its_options_and_checked_samples(user_package):
    dataset = build_dataset(f"{user_package}:Stripes", None, "test", count=5, classes=3)
    assert len(dataset) == 5 and dataset.split == "test"
    assert dataset.targets["stripes"].num_classes == 3
    assert dataset[4]["stripes"][0].tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    with pytest.raises(NddrError, match=r"unknown option of dataset 'mylab\.data:Stripes' 'size'"):
        build_dataset(f"{user_package}:Stripes", None, size=3)
    assert f"{user_package}:Stripes" not in DATASETS


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("mylab.missing:Stripes", "module 'mylab.missing' cannot be imported (ModuleNotFoundError"),
        ("mylab.broken:Stripes", "module 'mylab.broken' cannot be imported (ModuleNotFoundError"),
        ("mylab.data:Stripe", "has no 'Stripe': check the class name"),
        ("mylab.data:not_a_class", "is not a MultiTaskDataset subclass (it is of type 'int')"),
        ("mylab.data:np", "(it is of type 'module'): subclass nddr.data.MultiTaskDataset"),
        ("mylab.data:", "is not module:Class, e.g. mypackage.data:MyDataset"),
        (":Stripes", "is not module:Class"),
    ],
)
def test_a_bad_user_class_is_one_line(user_package, name, fragment):
    with pytest.raises(NddrError) as error:
        user_dataset(name)
    assert fragment in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_an_unknown_name_suggests_the_catalogue_and_the_class_form():
    with pytest.raises(NddrError, match=r"did you mean 'folder'.*, or a class as module:Class"):
        build_dataset("foldr", "somewhere")


def test_a_config_names_a_user_class_without_touching_nddr(user_package):
    from nddr.training.build import training_set
    from nddr.training.config import build_config

    data = {"name": f"{user_package}:Stripes", "options": {"count": 4}, "crop_size": 8}
    train_set = training_set(build_config({"data": {**data, "scale_range": None, "flip": False}}))
    assert len(train_set) == 4
    assert train_set[1]["stripes"][0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
