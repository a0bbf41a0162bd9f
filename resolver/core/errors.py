"""The one error of the operations layer: a refusal with its Handle response code.

Every front end turns it into its own shape (REST: an HTTP status and the
``{"responseCode", "handle", "message"}`` body; the Handle protocol: an error
reply with that code; the CLI: one line and an exit status), so every front
end refuses the same request with the same code.
"""

from __future__ import annotations

from registry.errors import RegistryError


class Refused(Exception):
    """The request is answered with ``code`` (an :class:`RC`) and ``message``."""

    def __init__(self, code: int, message: str = "", *, retry_after: float | None = None):
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.retry_after = retry_after      # seconds, for a caller that is locked out

    def __repr__(self) -> str:
        return f"Refused({self.code}, {self.message!r})"


def refused(exc: RegistryError) -> Refused:
    """A registry error as the operations layer reports it."""
    return Refused(exc.code, str(exc) or type(exc).__name__)
