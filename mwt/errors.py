"""The one exception type for failures a user can fix."""


class MwtError(Exception):
    """A user-facing error: the CLI prints its message as one line on stderr and exits non-zero.

    Messages say what was wrong and, where possible, what to do instead.
    """


class Interrupted(Exception):
    """A run stopped on request (Ctrl-C or SIGTERM); `code` is the exit status to leave with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
