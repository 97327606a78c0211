"""The user-facing exception and warning types.

Library messages name settings by what they are ("a smaller learning rate"), not by command-line
flag; an error or warning may list the `options` (parameter names) that fix it, and the command
line shows those as its flags.
"""

from __future__ import annotations


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of a third-party exception's message (its type name when it has none), cut
    to `limit` characters: what an MwtError that wraps it quotes."""
    return (str(error).splitlines() or [type(error).__name__])[0][:limit]


class MwtError(Exception):
    """A failure a user can fix: the CLI prints its message as one line on stderr and exits 2.

    Messages say what was wrong and, where possible, what to do instead; `options` are the
    parameters (e.g. "force_folded") that do it.
    """

    def __init__(self, message: str, *, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.options = options


class MwtWarning(UserWarning):
    """Something a user should know that does not stop the work (the CLI prints it in one line)."""

    def __init__(self, message: str, *, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.options = options


class Interrupted(Exception):
    """A run stopped on request (Ctrl-C or SIGTERM); `code` is the exit status to leave with."""

    def __init__(self, message: str, code: int, *, options: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.options = options
