"""The REST error shape: every failure is ``{"responseCode", "handle", "message"}``."""

from __future__ import annotations

from registry import errors as reg

# HTTP status for a registry error class, as the Handle.Net REST API answers.
_STATUS = {
    reg.HandleNotFound: 404,
    reg.HandleExists: 409,
    reg.InvalidHandleError: 400,
    reg.ValuesNotFound: 400,
    reg.ValueExists: 409,
    reg.InvalidValue: 400,
    reg.PrefixNotFound: 404,
    reg.PrefixExists: 409,
    reg.PrefixDisabled: 403,
    reg.NotInitialised: 503,
    reg.StoreUnavailable: 503,
}


class ApiError(Exception):
    """Raised by handlers; the app's middleware renders it."""

    def __init__(self, status: int, code: int, message: str, handle: str | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = int(code)
        self.message = message
        self.handle = handle
        self.headers = headers or {}


def from_registry(exc: reg.RegistryError, handle: str | None) -> ApiError:
    status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
    return ApiError(status, exc.code, str(exc) or type(exc).__name__, handle)

