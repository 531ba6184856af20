"""``nddr inspect`` end to end on networks saved with nddr.save_network."""

import argparse
import json

import pytest
import torch
from PIL import Image

import nddr
from nddr import cli
from nddr.cli import inspect as cmd
from nddr.errors import NddrError
from nddr.io import save_state_dict

TASKS = {"seg": 4, "normals": 3}


def _inspect(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="nddr")
    cmd.add_parser(parser.add_subparsers(dest="command"), "inspect")
    return cmd.run(parser.parse_args(["inspect", *argv]))


def _save(path, variant="nddr", **fusion_options):
    network = nddr.build_network("tiny", TASKS, variant, fusion_options=fusion_options)
    return nddr.save_network(network, path)


def test_table_and_heatmap_beside_the_model(tmp_path, capsys):
    model = _save(tmp_path / "net.safetensors")
    assert _inspect(str(model)) == 0
    out = capsys.readouterr().out
    assert "NDDR 1 (16 channels per task)" in out and "NDDR 5" in out
    assert out.count("seg <-") == 5 and "90.0%" in out and "10.0%" in out
    heatmap = tmp_path / cmd.HEATMAP_NAME
    assert f"heatmap written to {heatmap}" in out
    assert Image.open(heatmap).format == "PNG"


def test_json_and_out(tmp_path, capsys):
    model = _save(tmp_path / "net.safetensors")
    out = tmp_path / "figures" / "shares.png"
    assert _inspect(str(model), "--json", "--out", str(out)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoint"] == str(model) and report["heatmap"] == str(out)
    assert [layer["stage"] for layer in report["layers"]] == [1, 2, 3, 4, 5]
    assert report["layers"][0]["tasks"] == ["seg", "normals"]
    assert report["layers"][4]["shares"][0] == pytest.approx([0.9, 0.1])
    assert out.is_file() and not (tmp_path / cmd.HEATMAP_NAME).exists()

    assert _inspect(str(model), "--json", "--no-heatmap", "--fold-bn") == 0
    assert json.loads(capsys.readouterr().out)["heatmap"] is None
    assert not (tmp_path / cmd.HEATMAP_NAME).exists()


def test_run_folder_reads_its_newest_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    _save(run / "checkpoints" / "step_00000050" / "model.safetensors")
    _save(run / "checkpoints" / "step_00000100" / "model.safetensors", init=(0.7, 0.3))
    assert _inspect(str(run), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    newest = run / "checkpoints" / "step_00000100"
    assert report["checkpoint"] == str(newest / "model.safetensors")
    assert report["layers"][0]["shares"][0] == pytest.approx([0.7, 0.3])
    assert (newest / cmd.HEATMAP_NAME).is_file()
    assert _inspect(str(run / "checkpoints" / "step_00000050")) == 0
    assert "90.0%" in capsys.readouterr().out


def test_bad_input_is_one_line_error(tmp_path):
    with pytest.raises(NddrError, match="nowhere"):
        _inspect(str(tmp_path / "nowhere.safetensors"))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(NddrError, match="not a readable safetensors file"):
        _inspect(str(garbage))
    plain = save_state_dict(torch.nn.Linear(2, 2).state_dict(), tmp_path / "plain.safetensors")
    with pytest.raises(NddrError, match="no nddr build config"):
        _inspect(str(plain))
    with pytest.raises(NddrError, match=r"'multi' network .* has no fusion layers"):
        _inspect(str(_save(tmp_path / "multi.safetensors", "multi")))
    with pytest.raises(NddrError, match="leave it off"):
        _inspect(str(_save(tmp_path / "cs.safetensors", "cross_stitch")), "--fold-bn")


@pytest.mark.parametrize(
    ("variant", "title"), [("cross_stitch", "Cross-stitch"), ("sluice", "Sluice")]
)
def test_cross_stitch_and_sluice_checkpoints_print_a_table(tmp_path, capsys, variant, title):
    model = _save(tmp_path / "net.safetensors", variant, init=(0.7, 0.3))
    assert _inspect(str(model)) == 0
    out = capsys.readouterr().out
    assert f"{title} 1 (16 channels per task)" in out and f"{title} 5" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("seg <-")]
    assert rows == [["seg", "<-", "70.0%", "30.0%"]] * 5
    assert Image.open(tmp_path / cmd.HEATMAP_NAME).format == "PNG"
    assert _inspect(str(model), "--json", "--no-heatmap") == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [layer["kind"] for layer in layers] == [variant] * 5
    assert layers[2]["shares"][1] == pytest.approx([0.3, 0.7])


@pytest.mark.parametrize(
    ("variant", "title"), [("nddr_grouped", "Grouped NDDR"), ("nddr_lowrank", "Low-rank NDDR")]
)
def test_efficient_nddr_checkpoints_print_their_shares(tmp_path, capsys, variant, title):
    model = _save(tmp_path / "net.safetensors", variant, init=(0.7, 0.3))
    for flags in ([], ["--fold-bn"]):
        assert _inspect(str(model), "--no-heatmap", *flags) == 0
        out = capsys.readouterr().out
        assert f"{title} 1 (16 channels per task)" in out and f"{title} 5" in out
        rows = [line.split() for line in out.splitlines() if line.strip().startswith("seg <-")]
        assert rows == [["seg", "<-", "70.0%", "30.0%"]] * 5
    assert _inspect(str(model), "--json", "--no-heatmap") == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [layer["kind"] for layer in layers] == [variant] * 5


def test_errors_exit_2_through_main(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "inspect", cmd)
    assert cli.main(["inspect", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nddr inspect: error:") and "missing" in err and "\n" not in err
    single = _save(tmp_path / "single.safetensors", "single")
    assert cli.main(["inspect", str(single)]) == 2
    err = capsys.readouterr().err.strip()
    assert "'single' network" in err and "variant 'nddr'" in err and "\n" not in err
