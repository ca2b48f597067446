"""The exit statuses every command shares, as a shell reports them."""

import sys

EXIT_USAGE = 2
"""An option or argument was refused before anything ran."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: 128 + SIGINT."""
EXIT_BROKEN_PIPE = 141
"""The reader of stdout went away (`| head`): 128 + SIGPIPE."""


def refuse_usage(command: str, message: str) -> int:
    """Values each fine alone but refused together (a range that ends before it starts):
    said as the parser says a refused value, so a script sees the same status for both."""
    print(f"hotline400 {command}: {message} (see hotline400 {command} --help)", file=sys.stderr)
    return EXIT_USAGE
