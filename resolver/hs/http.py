"""Handle protocol over HTTP: ``POST /{percent-encoded handle}`` on the node's app.

The body is envelope + message with ``Content-Type: application/x-hdl-message``
(Handle.Net ``Common.HDL_MIME_TYPE``); the reply is ``200`` with envelope +
message (several, one after another, for list handles). Input without a
readable request id is answered ``400`` with no body. The path is not read:
the message names its handle. Paths under ``/api/`` stay the REST API's. The
body is read as every body is (:func:`resolver.bodies.read_raw`): a
``Content-Encoding`` is refused (415), a body over the limit too (413).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from protocol.codes import RC

from ..bodies import read_raw
from ..errors import ApiError
from .service import HandleService

HDL_MIME_TYPE = "application/x-hdl-message"
_ACCEPTED = (HDL_MIME_TYPE, "application/octet-stream")
SERVICE = web.AppKey("idnode.hs.service", HandleService)


async def hdl_message(request: web.Request) -> web.Response:
    if request.content_type not in _ACCEPTED:
        raise ApiError(415, RC.ERROR, f"unsupported Content-Type {request.content_type[:80]!r}; use {HDL_MIME_TYPE}")
    service = request.app[SERVICE]
    data = await read_raw(request)
    replies = service.handle(data, request.remote or "?", "http")
    if callable(replies):                       # the plain tier, read inline
        replies = replies()
    if type(replies) is not bytes:
        if asyncio.iscoroutine(replies):
            replies = await replies
        else:
            replies = b"".join([reply async for reply in replies])
    if not replies:
        return web.Response(status=400)
    return web.Response(body=replies, content_type=HDL_MIME_TYPE)


ROUTES = (
    ("POST", r"/{handle:(?!api/).*}", hdl_message),
)
