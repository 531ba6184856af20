"""The one exception type for bad user input: the CLI prints it as one line and exits non-zero."""

import difflib
from collections.abc import Iterable


class NddrError(Exception):
    """A problem with the user's input (a file, a name, a shape, a config), with how to fix it.

    The message is complete on its own: it names the thing that is wrong and the fix.
    """


def describe_keys(keys: list[str], limit: int = 3) -> str:
    """A short listing of state-dict keys for an error message: count and the first few."""
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} keys: {shown}" + (", ..." if len(keys) > limit else "")


def unknown_choice(kind: str, name: str, choices: Iterable[str], also: str = "") -> NddrError:
    """The error for a name that is not among ``choices``, suggesting the closest one."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return NddrError(f"unknown {kind} {name!r}: {hint}choose one of {', '.join(choices)}{also}")
