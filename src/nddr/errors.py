"""The one exception type for bad user input: the CLI prints it as one line and exits non-zero."""


class NddrError(Exception):
    """A problem with the user's input (a file, a name, a shape, a config), with how to fix it.

    The message is complete on its own: it names the thing that is wrong and the fix.
    """
