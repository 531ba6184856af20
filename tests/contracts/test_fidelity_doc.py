"""docs/fidelity.md and the paper configs cannot drift apart.

Every row of the document's tables names, in its ``runs`` column, the runs it speaks of (a
selector ``SUITES[: FILTERS]``), and in its ``nddr`` column the config values those runs use
(```key = value``` in backticks). This test resolves every planned run of every selected suite
(base files and overrides applied, as ``nddr reproduce --dry-run --json`` shows them) and checks
each stated value, so a config change without the document's, or the reverse, fails here."""

from __future__ import annotations

import math
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from nddr.reproduce import SUITES, plan
from nddr.training.config import Config

ROOT = Path(__file__).resolve().parents[2]


DOCUMENT = ROOT / "docs" / "fidelity.md"


PAPER_SUITES = tuple(name for name in SUITES if name.startswith("table"))


_ASSIGNMENT = re.compile(r"`([a-z_]+(?:\.[A-Za-z0-9_.]+)+) = ([^`]+)`")


_SELECTOR = re.compile(r"`([^`]+)`")


def _table_rows(text: str) -> list[dict[str, str]]:
    """Every body row of every markdown table whose header has a ``runs`` and an ``nddr``
    column, as header -> cell."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = [cell.lower() for cell in cells]
        elif not set(cells[0]) <= set("-: "):
            if "runs" in header and "nddr" in header:
                rows.append(dict(zip(header, cells)))
    return rows


def _suites(names: str) -> list[str]:
    """``table1-6``, ``table4,table7``, ``tableS1``, ``paper`` (every paper suite)."""
    chosen: list[str] = []
    for name in names.split(","):
        name = name.strip()
        if name == "paper":
            chosen.extend(PAPER_SUITES)
        elif match := re.fullmatch(r"table(\d)-(\d)", name):
            chosen.extend(f"table{k}" for k in range(int(match[1]), int(match[2]) + 1))
        elif name in SUITES:
            chosen.append(name)
        else:
            raise AssertionError(f"fidelity.md names an unknown suite {name!r}")
    return chosen


@cache
def _runs(suite: str) -> list[tuple[str, Config]]:
    """(config file stem, resolved config) of every run ``nddr reproduce SUITE`` plans."""
    runs = []
    for spec in plan(suite, seeds=1, out="runs/fidelity"):
        settings = spec.settings
        assert settings is not None
        runs.append((spec.config.stem, settings))
    return runs


def _selected(selector: str) -> list[tuple[str, str, Config]]:
    suites, _, filters = selector.partition(":")
    tokens = [token.strip() for token in filters.split(",") if token.strip()]
    chosen = []
    for suite in _suites(suites):
        for stem, config in _runs(suite):
            kinds = {
                "single-task": config.model.variant == "single",
                "two-task": len(config.data.tasks or ()) == 2,
            }
            if not tokens or any(kinds.get(token, False) or token == stem for token in tokens):
                chosen.append((suite, stem, config))
    return chosen


def _lookup(config: Config, key: str) -> Any:
    node: Any = config.to_dict()
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(float(actual), float(expected), rel_tol=1e-9)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    return actual == expected


def _claims() -> list[tuple[str, str, str, Any]]:
    """(item, selector, key, value) for every stated config value of the document."""
    claims = []
    for row in _table_rows(DOCUMENT.read_text()):
        selectors = _SELECTOR.findall(row["runs"])
        for key, value in _ASSIGNMENT.findall(row["nddr"]):
            for selector in selectors:
                claims.append((row["item"], selector, key, yaml.safe_load(value)))
    return claims


def test_the_document_states_config_values_for_every_paper_suite():
    claims = _claims()
    assert len(claims) >= 30
    covered = {suite for _, selector, _, _ in claims for suite in _suites(selector.split(":")[0])}
    assert covered == set(PAPER_SUITES)


@pytest.mark.parametrize(
    ("item", "selector", "key", "value"),
    _claims(),
    ids=lambda value: str(value)[:40] if isinstance(value, str) else None,
)
def test_the_paper_configs_use_the_values_the_document_states(item, selector, key, value):
    runs = _selected(selector)
    assert runs, f"fidelity.md row {item!r}: selector {selector!r} selects no run"
    wrong = [
        f"{suite}/{stem}: {key} = {_lookup(config, key)!r}"
        for suite, stem, config in runs
        if not _same(_lookup(config, key), value)
    ]
    assert not wrong, f"fidelity.md row {item!r} says {key} = {value!r} for {selector}; " + (
        "; ".join(wrong)
    )


def test_selectors_and_parsing_catch_a_wrong_value():
    """The check itself can fail: a value no run has is reported for every run selected."""
    runs = _selected("table4: single-task")
    assert {stem for _, stem, _ in runs} == {"single_segmentation", "single_normals"}
    assert not all(_same(_lookup(config, "optim.weight_decay"), 1.0) for _, _, config in runs)
    assert _lookup(runs[0][2], "optim.no_such_key") is _MISSING
