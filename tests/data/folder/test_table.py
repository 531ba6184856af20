"""The CSV of image-level targets: classes by index or name, real values, malformed rows."""

import pytest

from nddr.data.folder.manifest import ImageLevelTarget
from nddr.data.folder.table import read_table
from nddr.errors import NddrError

GENDER = ImageLevelTarget(kind="classification", classes=2, class_names=("female", "male"))


def _table(tmp_path, text, columns=("gender", "age")):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return read_table(path, list(columns))


def test_classes_by_index_or_name_and_real_values(tmp_path):
    table = _table(tmp_path, "stem,gender,age\na,male,31.5\nb, 0 ,-2\n")
    assert table.label("a", "gender", GENDER) == 1 and table.label("b", "gender", GENDER) == 0
    assert table.value("a", "age") == 31.5 and table.value("b", "age") == -2.0


@pytest.mark.parametrize(
    ("row", "read", "fragment"),
    [
        ("a,2,1", "label", "labels.csv:2: gender 2 is outside 0..1"),
        ("a,man,1", "label", "labels.csv:2: gender 'man' is not a class: use an integer 0..1 or"),
        ("a,male,nan", "value", "labels.csv:2: age 'nan' is not a finite number"),
        ("a,male,", "value", "labels.csv:2: age '' is not a finite number"),
        ("b,male,1", "label", "has no row for 'a': add one"),
    ],
)
def test_a_bad_cell_names_its_line(tmp_path, row, read, fragment):
    table = _table(tmp_path, f"stem,gender,age\n{row}\n")
    with pytest.raises(NddrError) as error:
        table.label("a", "gender", GENDER) if read == "label" else table.value("a", "age")
    assert fragment in str(error.value), str(error.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("stem,gender,age\na,1,2\na,0,3\n", "labels.csv:3: 'a' is listed twice (first on line 2)"),
        ("stem,gender,age\na,1\n", "labels.csv:2: expected 3 fields (stem, gender, age)"),
        ("stem,gender,age\na,1,2,4\n", "labels.csv:2: expected 3 fields"),
        ("name,gender,age\na,1,2\n", "has no column 'stem' (it has name, gender, age)"),
    ],
)
def test_a_malformed_table_is_one_line(tmp_path, text, fragment):
    with pytest.raises(NddrError) as error:
        _table(tmp_path, text)
    assert fragment in str(error.value) and "\n" not in str(error.value), str(error.value)
    with pytest.raises(NddrError, match="does not exist"):
        read_table(tmp_path / "missing.csv", [])
