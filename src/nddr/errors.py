"""The one exception type for bad user input: the CLI prints it as one line and exits non-zero."""


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
