"""``nddr models`` through the command line: help, catalogue and parameter tables."""

import pytest

from nddr import build_network
from nddr.cli import main
from nddr.cli.models import count_tasks


def test_models_lists_backbones_and_variants(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ["vgg16_lfov", "resnet50", "resnet101", "alexnet", "tiny", "timm:MODEL"]:
        assert name in out
    for variant in ["single", "multi", "cross_stitch", "sluice", "nddr", "shortcut"]:
        assert variant in out
    assert "64/128/256/512/512, output stride 8" in out


def _row(out: str, label: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [label])


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_params_counts_what_nddr_adds_to_vgg16(capsys):
    assert main(["models", "--params", "vgg16_lfov"]) == 0
    out = capsys.readouterr().out
    widths = (64, 128, 256, 512, 512)
    nddr_layers = sum((2 * c) ** 2 + 2 * (2 * c) for c in widths)  # KC x KC conv + BN over KC
    row = _row(out, "nddr")
    total, columns, heads, fusion, head_input, added = map(_number, row[1:7])
    assert fusion == added == nddr_layers and head_input == 0
    assert total == columns + heads + fusion
    assert row[7] == f"{100 * nddr_layers / columns:.2f}%"
    single = _row(out, "single")
    assert _number(single[4]) == 0 and _number(single[1]) == columns + heads
    shortcut = _row(out, "nddr+shortcut")
    assert _number(shortcut[5]) == 2 * (1472 * 512 + 2 * 512)  # one shortcut per column
    multi = _row(out, "multi+shortcut")
    assert _number(multi[5]) == 1472 * 512 + 2 * 512  # the shared trunk's one shortcut
    lfov = 512 * 9 * 1024 + 1024 + 1024 * 1024 + 1024 + 2 * 2 * 1024  # fc6, fc7 and their BN
    assert heads == 2 * lfov + (1024 + 1) * (40 + 3)  # and the two fc8
    per_task = sum(2 * c * c for c in widths)
    assert f"NDDR weights of one task (the 1x1 convs, no BN): {per_task:,}" in out


def test_params_for_k_tasks(capsys):
    assert main(["models", "--params", "tiny", "--tasks", "3"]) == 0
    out = capsys.readouterr().out
    assert "segmentation (40), normals (3), depth (1)" in out
    widths = (16, 32, 64, 64, 64)
    assert _number(_row(out, "nddr")[4]) == sum((3 * c) ** 2 + 2 * 3 * c for c in widths)


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
