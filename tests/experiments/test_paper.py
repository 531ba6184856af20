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
