"""The exit statuses every command shares, as a shell reports them."""

EXIT_USAGE = 2
"""An option or argument was refused before anything ran."""
EXIT_INTERRUPTED = 130
"""Ctrl-C: 128 + SIGINT."""
EXIT_BROKEN_PIPE = 141
"""The reader of stdout went away (`| head`): 128 + SIGPIPE."""
