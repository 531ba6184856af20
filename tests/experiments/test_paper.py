"""`nddr reproduce`: suites plan in dependency order, tables show ours beside the paper, reruns resume."""

from __future__ import annotations

import pytest

from nddr.errors import NddrError
from nddr.experiments.paper import paper_sources
from nddr.reproduce import (
    paper_rows,
)


def test_paper_rows_come_from_the_csv():
    assert paper_rows(4)["single_task"]["normal_11.25"] == 46.4
    assert paper_rows("table1")["init(xavier)"]["seg_miou"] == 33.4
    assert paper_rows("7")["nddr"] == {"age_mae": 8.0, "age_medae": 6.2, "gender_acc": 84.0}
    with pytest.raises(NddrError, match="no table"):
        paper_rows(9)


def test_published_rows_come_from_their_csv_with_a_source_each():
    rows = paper_rows("libmtl-nyuv2")
    assert rows["multi_task"]["depth_abs"] == 0.3771
    assert "source" not in rows["mtan"]
    sources = paper_sources("libmtl-nyuv2")
    assert set(sources) == set(rows) and all("LibMTL" in source for source in sources.values())
    assert paper_sources(4) == {}
    with pytest.raises(NddrError, match=r"published_tables\.csv has no table 'libmtl-voc'"):
        paper_rows("libmtl-voc")


def test_published_numbers_of_pascal_context_name_their_source():
    from nddr.experiments.paper import paper_numbers, published_gains
    from nddr.experiments.suites import get_suite

    rows = paper_rows("vandenhende-pascal-context")
    assert rows["single_task"]["seg_miou"] == 66.2 and rows["nddr"] == {"delta_mtl": 0.39}
    (source,) = set(paper_sources("vandenhende-pascal-context").values())
    assert "Vandenhende et al." in source and "Table 5b" in source and "(resnet18)" in source
    assert published_gains("vandenhende-pascal-context") == {
        "single_task": 0.0,
        "multi_task": -2.86,
        "cross_stitch": 0.60,
        "nddr": 0.39,
    }
    assert published_gains("libmtl-nyuv2") == {} and published_gains(4) == {}
    numbers = paper_numbers(get_suite("pascal-context"))
    assert numbers["single_task"] == {"Seg mIoU": 66.2, "Parts mIoU": 59.9, "N mean": 13.9}
    assert numbers["nddr"] == {}
