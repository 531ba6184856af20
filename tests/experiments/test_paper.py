"""`nddr reproduce`: suites plan in dependency order, tables show ours beside the paper, reruns resume."""

from __future__ import annotations

import pytest

from nddr.errors import NddrError
from nddr.reproduce import (
    paper_rows,
)


def test_paper_rows_come_from_the_csv():
    assert paper_rows(4)["single_task"]["normal_11.25"] == 46.4
    assert paper_rows("table1")["init(xavier)"]["seg_miou"] == 33.4
    assert paper_rows("7")["nddr"] == {"age_mae": 8.0, "age_medae": 6.2, "gender_acc": 84.0}
    with pytest.raises(NddrError, match="no table"):
        paper_rows(9)


def test_published_numbers_of_pascal_context_name_their_source():
    from nddr.experiments.paper import paper_numbers, published_rows, published_sources
    from nddr.experiments.suites import get_suite

    rows = published_rows("pascal_context_published.csv")
    assert rows["single_task"]["semseg_miou"] == 66.2 and rows["nddr"] == {"delta_mtl": 0.39}
    (source,) = published_sources("pascal_context_published.csv")
    assert "Vandenhende et al." in source and "Table 5b" in source and "(resnet18)" in source
    numbers = paper_numbers(get_suite("pascal-context"))
    assert numbers["single_task"] == {"Seg mIoU": 66.2, "Parts mIoU": 59.9, "N mean": 13.9}
    assert numbers["nddr"] == {}
    with pytest.raises(NddrError, match=r"'missing\.csv' is not in nddr/experiments/"):
        published_rows("missing.csv")
