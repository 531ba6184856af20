"""`nddr reproduce`: suites plan in dependency order, tables show ours beside the paper, reruns resume."""

from __future__ import annotations

import pytest

from nddr.errors import NddrError


def test_suites_file_errors_name_the_suite_and_the_fix():
    from nddr.experiments.suites import load_suites

    base = "columns: {c: [{name: a, task: left, metric: accuracy}]}\nsuites:\n  s:\n"
    suite = "    title: t\n    tasks: {left: classification}\n    columns: c\n"
    single = "    rows:\n      single_task: {configs: {left: a.yaml}}\n"
    loaded = load_suites(
        base + suite + single + "      nddr: {configs: [b.yaml], init_from_single: true}\n"
    )
    assert loaded["s"].single == {"left": "a.yaml"}
    assert [(r.label, r.configs, r.init_from_single) for r in loaded["s"].rows] == [
        ("single_task", ("a.yaml",), False),
        ("nddr", ("b.yaml",), True),
    ]
    with pytest.raises(NddrError, match="needs a single_task row"):
        load_suites(base + suite + "    rows:\n      nddr: {configs: [b.yaml]}\n")
    with pytest.raises(NddrError, match="unknown column set"):
        load_suites(base + suite.replace("columns: c", "columns: d") + single)
    with pytest.raises(NddrError, match=r"not a valid suites file .*init_from_singel"):
        load_suites(
            base + suite + single + "      x: {configs: [b.yaml], init_from_singel: true}\n"
        )


def test_pascal_context_suite_names_its_published_table():
    from nddr.experiments.suites import get_suite

    pascal = get_suite("pascal-context")
    assert pascal.tasks == {
        "semseg": "segmentation",
        "human_parts": "segmentation",
        "saliency": "saliency",
        "normals": "normals",
    }
    assert [row.label for row in pascal.rows][-1] == "nddr_shortcut"
    assert pascal.table == "vandenhende-pascal-context"
