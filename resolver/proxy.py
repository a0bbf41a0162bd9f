"""Proxy-style resolution (``GET /{handle}``), health, readiness and metrics."""

from __future__ import annotations

from aiohttp import web

from protocol.codes import RC
from protocol.identifier import InvalidHandle, parse_handle

from .core.caller import anonymous
from .core.errors import Refused
from .core.urls import redirect_target
from .node import NODE
from .query import Query


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


async def proxy(request: web.Request) -> web.Response:
    """302 to the first public URL value (an absolute http(s) URL); 404 with a
    short explanation otherwise."""
    node = request.app[NODE]
    text = request.match_info["handle"]
    try:
        handle = parse_handle(text)
    except InvalidHandle as exc:
        return _text(400, f"Not a valid identifier: {exc}")
    try:
        view = await node.core.resolve(Query(handle, types=("URL",), caller=anonymous(request.remote or "?")))
    except Refused as exc:
        return _text(503 if exc.code == RC.SERVER_BUSY else 404, f"Identifier {handle.text}: {exc.message}")
    if view.elsewhere:
        return _text(404, f"Identifier {handle.text} is not served here: {view.message}.")
    target = redirect_target(view.values)
    if target is None:
        return _text(404, f"Identifier {view.handle} exists but has no public http(s) URL value.")
    raise web.HTTPFound(location=target)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        prefix = await node.core.node_prefix()
    except Exception as exc:  # noqa: BLE001 - any store failure means "not ready"
        return web.json_response({"status": "unavailable", "reason": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready", "prefix": prefix})


async def metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    identifiers, prefixes = await node.core.sizes()
    body = node.metrics.render(identifiers, prefixes, node.pipeline.collect)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


ROUTES = (
    ("GET", "/healthz", healthz),
    ("GET", "/readyz", readyz),
    ("GET", "/metrics", metrics),
    ("GET", "/{handle:.+/.*}", proxy),
)
