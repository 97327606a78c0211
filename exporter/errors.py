"""The exporter's user-facing error."""

from mwt.core.errors import MwtError


class ExportError(MwtError):
    """A module cannot be exported as asked; the message says why and what to do."""
