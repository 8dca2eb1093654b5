"""The ``yolact`` command line: one console command with subcommands."""


class CommandError(Exception):
    """A user-facing failure: printed as one line on stderr, exit code 2, no traceback."""
