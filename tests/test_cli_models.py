"""``nddr models`` through the command line: help, catalogue and parameter tables."""

import pytest

from nddr import build_network
from nddr.cli import main
from nddr.cli.models import count_tasks


def test_help_prints_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit):
        main(["models", "--help"])
    out = capsys.readouterr().out
    assert "% of the K columns" in out and "%%" not in out


def _totals(out: str) -> dict[str, int]:
    """variant -> total parameters, from the table's rows."""
    rows = [line.split() for line in out.splitlines()]
    return {row[0]: int(row[1].replace(",", "")) for row in rows if len(row) == 8}


@pytest.mark.parametrize(
    "backbone", ["timm:regnetx_002", "timm:efficientnet_b0", "timm:mobilenetv3_small_100"]
)
def test_timm_parameter_table_counts_what_a_cpu_build_has(backbone, capsys):
    pytest.importorskip("timm")
    assert main(["models", "--params", backbone]) == 0
    totals = _totals(capsys.readouterr().out)
    network = build_network(backbone, count_tasks(2), "nddr")
    assert totals["nddr"] == sum(p.numel() for p in network.parameters())
    assert set(totals) >= {"single", "cross_stitch", "sluice", "nddr+shortcut"}


def test_a_timm_model_without_stages_is_a_one_line_error(capsys):
    pytest.importorskip("timm")
    assert main(["models", "--params", "timm:vit_tiny_patch16_224"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nddr models: error: timm model 'vit_tiny_patch16_224'")
    assert "not a module sequence" in err and "\n" not in err
