"""Request and response bodies: the one place a request body is read and decoded.

Every front end that takes a body (REST, batch, prefixes, the Handle protocol
over HTTP) reads it here, so every one refuses the same way, in the API's
error shape: 415 for any ``Content-Encoding`` but identity (the node takes
bodies as sent: no client of the Handle REST API compresses, and refusing
needs no bound on a decompressed size), 413 over ``http.max_body_bytes``,
408 for a body that does not arrive within ``http.body_timeout``, 400 for
a body cut short or bytes that do not decode. A decoded JSON or CBOR
body is walked level by level, without recursion, and refused (400) when it
nests deeper than ``http.max_json_depth`` (cbor2 stops there itself) or, in
CBOR, holds what JSON cannot (tags, byte strings, sets, shared or cyclic
references, non-text keys, integers beyond 64 bits, NaN): handlers see the
JSON data model only. A refusal that leaves the body unread says
``Connection: close`` and closes the connection after the answer, without
reading (or waiting for) the rest of the body.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import cbor2
import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from protocol.codes import RC

from .errors import RC_KEY, ApiError, short_text
from .node import NODE

JSON = "application/json"
CBOR = "application/cbor"
_JSON_TYPES = frozenset((dict, list, str, int, float, bool, type(None)))
_INTS = range(-(1 << 63), 1 << 64)          # what JSON decoding (orjson) gives as int
_UNREAD = {"Connection": "close"}           # a body refused unread: the connection is not reused


def _refused_unread(request: web.Request, status: int, message: str, handle: str | None,
                    headers: dict[str, str] | None = None) -> ApiError:
    """A refusal of a body left unread: the connection closes after the answer,
    without reading the rest (``drop_unread_body`` of the node's request handler)."""
    drop = getattr(request.protocol, "drop_unread_body", None)
    if drop is not None:
        drop()
    return ApiError(status, RC.ERROR, message, handle, headers={**(headers or {}), **_UNREAD})


async def read_raw(request: web.Request, handle: str | None = None) -> bytes:
    """The body's bytes as sent: 415 for a Content-Encoding, 413 over the size limit,
    400 when the client sends less than it announced."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise _refused_unread(request, 415, f"Content-Encoding {encoding[:40]!r} is not accepted; send the body "
                              "uncompressed", handle, {"Accept-Encoding": "identity"})
    limit = request.app[NODE].settings.http.max_body_bytes
    if (request.content_length or 0) > limit:
        raise _refused_unread(request, 413, f"request body larger than {limit} bytes", handle)
    try:
        async with asyncio.timeout(request.app[NODE].settings.http.body_timeout):
            return await request.read()
    except TimeoutError:
        late = getattr(request.protocol, "body_late", None)       # the node's request handler counts it
        if late is not None:
            late()
        raise _refused_unread(request, 408, "the request body did not arrive in time", handle) from None
    except web.HTTPRequestEntityTooLarge:
        raise _refused_unread(request, 413, f"request body larger than {limit} bytes", handle) from None
    except (web.RequestPayloadError, HttpProcessingError, ConnectionError) as exc:     # the last: the client left
        raise ApiError(400, RC.ERROR, f"unreadable request body: {short_text(exc)}", handle) from None


async def read_body(request: web.Request, *, allow_cbor: bool = False, handle: str | None = None) -> Any:
    """The decoded body; 415 for other media types, 400 for bad bytes or too deep, 413 too large."""
    # A body without a Content-Type is taken as JSON.
    ctype = request.content_type if "Content-Type" in request.headers else JSON
    allowed = (JSON, CBOR) if allow_cbor else (JSON,)
    if ctype not in allowed:
        raise ApiError(415, RC.ERROR, f"unsupported Content-Type {ctype[:80]!r}; use {' or '.join(allowed)}", handle)
    raw = await read_raw(request, handle)
    if not raw:
        raise ApiError(400, RC.ERROR, "empty request body", handle)
    depth = request.app[NODE].settings.http.max_json_depth
    kind = "CBOR" if ctype == CBOR else "JSON"
    try:
        body = cbor2.loads(raw, max_depth=depth) if ctype == CBOR else orjson.loads(raw)
    except (cbor2.CBORDecodeError, orjson.JSONDecodeError) as exc:
        raise ApiError(400, RC.ERROR, f"malformed {kind} body: {short_text(exc)}", handle) from None
    problem = _unlike_json(body, depth, ctype == CBOR)
    if problem:
        raise ApiError(400, RC.ERROR, f"{kind} body {problem}", handle)
    return body


def _unlike_json(body: Any, depth: int, cbor: bool) -> str | None:
    """Why ``body`` is not a JSON document at most ``depth`` deep, or None. Level by
    level, without recursion; for CBOR also what JSON decoding guarantees itself."""
    values, level, seen = [body], 0, set()
    while True:
        if cbor and (problem := _not_json(values, seen)):
            return problem
        containers = [x for x in values if type(x) is dict or type(x) is list]
        if not containers:
            return None
        level += 1
        if level > depth:
            return f"nested too deep: at most {depth} levels"
        values = [v for x in containers for v in (x.values() if type(x) is dict else x)]


def _not_json(values: list, seen: set[int]) -> str | None:
    """What among one level's ``values`` JSON cannot hold (``seen``: containers met so far)."""
    odd = [v for v in values if type(v) not in _JSON_TYPES]
    if odd:
        return f"holds a {type(odd[0]).__name__}, which JSON cannot"
    containers = [id(x) for x in values if type(x) is dict or type(x) is list]
    before = len(seen)
    seen.update(containers)
    if len(seen) != before + len(containers):
        return "holds a shared or cyclic value"
    if not all(type(k) is str for x in values if type(x) is dict for k in x):
        return "has an object key that is not text"
    ints = [x for x in values if type(x) is int]
    if ints and (min(ints) < _INTS.start or max(ints) >= _INTS.stop):
        return "holds an integer beyond 64 bits"
    if not all(math.isfinite(x) for x in values if type(x) is float):
        return "holds a number that is not finite"
    return None


def respond(request: web.Request, payload: Any, status: int = 200, *, allow_cbor: bool = False) -> web.Response:
    """Encode ``payload``; its ``responseCode`` is kept on the response for metrics."""
    if allow_cbor and CBOR in request.headers.get("Accept", ""):
        resp = web.Response(body=cbor2.dumps(payload), status=status, content_type=CBOR)
    else:
        resp = web.Response(body=orjson.dumps(payload), status=status, content_type=JSON)
    if isinstance(payload, dict) and "responseCode" in payload:
        resp[RC_KEY] = int(payload["responseCode"])
    return resp
