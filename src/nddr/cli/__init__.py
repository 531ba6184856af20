"""The ``nddr`` command: one sub-command per module of this package.

Each command module is light to import: its one-line ``HELP``, its ``add_parser`` and its ``run``,
which imports what the command uses when it runs. Only the chosen command's parser is built, so
``nddr --help`` and ``nddr CMD --help`` load no torch and answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from nddr.cli import bench, data, inspect, models, predict, reproduce, train
from nddr.cli import eval as evaluate
from nddr.errors import NddrError

COMMANDS = {
    "train": train,
    "eval": evaluate,
    "predict": predict,
    "inspect": inspect,
    "reproduce": reproduce,
    "data": data,
    "models": models,
    "bench": bench,
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``nddr`` parser with the full parser of ``command`` (``None``: of every command) and a
    one-line entry for each other command."""
    parser = argparse.ArgumentParser(
        prog="nddr", description="Multi-task CNNs with NDDR layer fusion (Gao et al., CVPR 2019)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        if command is None or name == command:
            module.add_parser(subparsers, name)
        else:
            subparsers.add_parser(name, help=module.HELP, add_help=False)
    return parser


def chosen_command(argv: Sequence[str]) -> str:
    """The command ``argv`` names (its first word that is not an option), or ``""``."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; bad input ends in one line on stderr and exit status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(chosen_command(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Overrides may follow options too (nddr train CONFIG --resume RUN optim.steps=50).
        if not hasattr(args, "items") or any(
            "=" not in item or item.startswith("-") for item in extra
        ):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.items = [*args.items, *extra]
    try:
        return COMMANDS[args.command].run(args)
    except NddrError as error:
        print(f"nddr {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print(f"nddr {args.command}: interrupted", file=sys.stderr)
        return 130
