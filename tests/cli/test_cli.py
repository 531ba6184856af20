import subprocess
import sys

import pytest

import nddr
from nddr.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["models", "--params", "vgg16"], "unknown backbone 'vgg16': did you mean 'vgg16_lfov'?"),
        (["models", "--params", "tiny", "--tasks", "0"], "--tasks must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "nddr", "models", "--params", "timm:nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "nddr models: error: timm has no model 'nope': see timm.list_models() for the names"
    )
    assert "Traceback" not in result.stderr


def test_import_nddr_is_torch_free_and_every_public_name_resolves():
    """``nddr/__init__`` imports its names on first use (PEP 562): ``import nddr`` loads no
    torch, and every name of ``__all__`` (the README's API) is there."""
    code = (
        "import sys, nddr; assert 'torch' not in sys.modules, 'torch imported'; "
        "missing = [n for n in nddr.__all__ if getattr(nddr, n, None) is None]; "
        "assert not missing, missing; "
        "assert {'build_network', 'build_dataset', 'build_tasks', 'load_config', 'train', "
        "'load_run', 'load_network', 'load_weights'} <= set(nddr.__all__)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nddr.nope  # noqa: B018
