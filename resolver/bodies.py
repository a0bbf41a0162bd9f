"""Request and response bodies in JSON or CBOR, chosen by Content-Type/Accept."""

from __future__ import annotations

from typing import Any

import cbor2
import orjson
from aiohttp import web

from protocol.codes import RC

from .errors import RC_KEY, ApiError
from .node import NODE

JSON = "application/json"
CBOR = "application/cbor"


async def read_body(request: web.Request, *, allow_cbor: bool = False, handle: str | None = None) -> Any:
    """Decode the request body; 415 for other media types, 400 for bad bytes, 413 too large."""
    # A body without a Content-Type is taken as JSON.
    ctype = request.content_type if "Content-Type" in request.headers else JSON
    allowed = (JSON, CBOR) if allow_cbor else (JSON,)
    if ctype not in allowed:
        raise ApiError(415, RC.ERROR, f"unsupported Content-Type {ctype!r}; use {' or '.join(allowed)}", handle)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, RC.ERROR, f"request body larger than {request.app[NODE].settings.http.max_body_bytes} bytes", handle) from None
    if not raw:
        raise ApiError(400, RC.ERROR, "empty request body", handle)
    try:
        if ctype == CBOR:
            return cbor2.loads(raw)
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        kind = "CBOR" if ctype == CBOR else "JSON"
        raise ApiError(400, RC.ERROR, f"malformed {kind} body: {str(exc).splitlines()[0][:200]}", handle) from None


def respond(request: web.Request, payload: Any, status: int = 200, *, allow_cbor: bool = False) -> web.Response:
    """Encode ``payload``; its ``responseCode`` is kept on the response for metrics."""
    if allow_cbor and CBOR in request.headers.get("Accept", ""):
        resp = web.Response(body=cbor2.dumps(payload), status=status, content_type=CBOR)
    else:
        resp = web.Response(body=orjson.dumps(payload), status=status, content_type=JSON)
    if isinstance(payload, dict) and "responseCode" in payload:
        resp[RC_KEY] = int(payload["responseCode"])
    return resp
