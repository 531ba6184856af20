"""``nddr --help``, ``nddr CMD --help`` and ``nddr train --config-help`` load no torch: a command
imports what it uses when it runs (timings: benchmarks/cli_startup.py)."""

import json
import subprocess
import sys

HEAVY = ("torch", "torchvision", "timm", "torchmetrics")


# Runs each command line in turn in one fresh interpreter and prints, per line, the heavy
# packages loaded by then (none loaded so far means none loaded by this line either).
_SCRIPT = """
import contextlib, io, json, sys
from nddr.cli import COMMANDS, main

lines = [json.loads(sys.argv[1])] if len(sys.argv) > 1 else [
    ["--help"], ["train", "--config-help"],
    *[[name, "--help"] for name in COMMANDS],
    *[["data", action, "--help"] for action in ("prepare", "check", "show")],
]
loaded = {}
for argv in lines:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            status = main(argv)
        except SystemExit as stop:
            status = stop.code
    assert status in (0, None) and out.getvalue(), (argv, status)
    loaded[" ".join(argv)] = sorted(
        {name.split(".")[0] for name in sys.modules} & set(HEAVY)
    )
print(json.dumps(loaded))
""".replace("HEAVY", repr(HEAVY))


def _loaded(*argv: str) -> dict[str, list[str]]:
    args = [json.dumps(list(argv))] if argv else []
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_help_of_every_command_and_the_config_reference_load_no_torch():
    loaded = _loaded()
    expected = {"--help", "train --config-help", "bench --help", "reproduce --help"}
    assert expected | {"data check --help"} <= set(loaded)
    assert all(not heavy for heavy in loaded.values()), loaded


def test_a_command_that_runs_loads_torch():
    """The check can fail: running a command (not its help) does load torch."""
    assert "torch" in _loaded("models", "--params", "tiny")["models --params tiny"]
