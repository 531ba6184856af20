"""How fast ``nddr`` answers ``--help``: start-up time and peak memory of the help commands.

Runs each command line ``--runs`` times in a fresh interpreter (``python -m nddr ...``, the same as
the ``nddr`` script) and prints the median wall time and the median peak resident memory of the
child (``os.wait4``). The commands are ``nddr --help``, ``nddr CMD --help``
for every command and ``nddr train --config-help``.

    python benchmarks/cli_startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from nddr.cli import COMMANDS


def measure(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one ``python -m nddr ARGV``."""
    start = time.perf_counter()
    # Popen starts the child without copying this process (vfork), so its peak is its own.
    child = subprocess.Popen([sys.executable, "-m", "nddr", *argv], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"nddr {' '.join(argv)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    args = parser.parse_args()
    lines = [["--help"], *[[name, "--help"] for name in COMMANDS], ["train", "--config-help"]]
    print(f"{'command':<28}{'median s':>10}{'peak MB':>10}")
    for argv in lines:
        runs = [measure(argv) for _ in range(args.runs)]
        seconds = statistics.median(run[0] for run in runs)
        memory = statistics.median(run[1] for run in runs)
        print(f"{'nddr ' + ' '.join(argv):<28}{seconds:>10.2f}{memory:>10.0f}")


if __name__ == "__main__":
    main()
