"""The REST error shape: every failure is ``{"responseCode", "handle", "message"}``
with the HTTP status the Handle.Net REST API gives that response code."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from protocol.codes import RC

from .core.errors import Refused

# The Handle responseCode of a response, read by the metrics wrapper.
RC_KEY = web.ResponseKey("idnode.rc", int)

# HTTP status for a Handle response code, as the Handle.Net REST API answers.
STATUS = {
    RC.HANDLE_NOT_FOUND: 404,
    RC.HANDLE_ALREADY_EXISTS: 409,
    RC.INVALID_HANDLE: 400,
    RC.VALUES_NOT_FOUND: 400,
    RC.VALUE_ALREADY_EXISTS: 409,
    RC.INVALID_VALUE: 400,
    RC.SERVER_NOT_RESPONSIBLE: 404,
    RC.SERVICE_REFERRAL: 404,          # not here: the message says where (REST does not follow referrals)
    RC.NOT_AN_ADMIN: 403,
    RC.INSUFFICIENT_PERMISSIONS: 403,
    RC.AUTHENTICATION_NEEDED: 401,
    RC.AUTHENTICATION_FAILED: 401,
    RC.INVALID_CREDENTIAL: 401,
    RC.AUTHENTICATION_ERROR: 401,
    RC.SERVER_BUSY: 503,
    RC.OPERATION_NOT_SUPPORTED: 400,
    # Only a recursive resolution answers these over REST: the node as a gateway, the other node at fault.
    RC.ERROR: 502,                     # the other nodes were slow, silent or unreachable
    RC.PROTOCOL_ERROR: 502,            # ... or answered garbage
    RC.RECURSION_COUNT_TOO_HIGH: 508,  # a referral loop, or too many nodes on the way
}
CHALLENGE = {"WWW-Authenticate": 'Basic realm="handle"'}


class ApiError(Exception):
    """Raised by handlers; the app's wrapper renders it."""

    def __init__(self, status: int, code: int, message: str, handle: str | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = int(code)
        self.message = message
        self.handle = handle
        self.headers = headers or {}


def error_response(status: int, code: int, message: str, handle: str | None, headers=None) -> web.Response:
    """The error shape as a response."""
    body = {"responseCode": int(code), "handle": handle, "message": message}
    resp = web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)
    if headers and headers.get("Connection") == "close":
        resp.force_close()              # as the header says: aiohttp would keep the connection otherwise
    resp[RC_KEY] = int(code)
    return resp


def from_refused(exc: Refused, handle: str | None) -> ApiError:
    """A refusal of the operations layer in the REST shape."""
    status = STATUS.get(exc.code, 500)
    headers = dict(CHALLENGE) if status == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(int(exc.retry_after))
    return ApiError(status, exc.code, exc.message or RC(exc.code).name.lower(), handle, headers)


def short_text(exc: BaseException) -> str:
    """An error's text on one line of at most 200 characters, for a message or a log
    line (aiohttp keeps its client errors' text in ``message``, a payload error's in its cause)."""
    if isinstance(exc, web.RequestPayloadError) and isinstance(exc.__cause__, HttpProcessingError):
        exc = exc.__cause__
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    return text[:200] or type(exc).__name__
