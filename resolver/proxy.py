"""Proxy-style resolution (``GET /{handle}``), health and readiness."""

from __future__ import annotations

from aiohttp import web

from protocol.identifier import InvalidHandle, parse_handle

from .node import NODE
from .rest import lookup, visible_values


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


async def proxy(request: web.Request) -> web.Response:
    """302 to the first public URL value; 404 with a short explanation otherwise."""
    node = request.app[NODE]
    text = request.match_info["handle"]
    try:
        handle = parse_handle(text)
    except InvalidHandle as exc:
        return _text(400, f"Not a valid identifier: {exc}")
    record = (await lookup(node, handle)).record
    if record is None:
        return _text(404, f"Identifier {handle.text} is not registered on this node.")
    urls = [v for v in visible_values(record.values, admin=False, types=("URL",))]
    if not urls:
        return _text(404, f"Identifier {record.handle} exists but has no public URL value.")
    target = urls[0].data.decode("utf-8", "replace")
    if any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return _text(404, f"Identifier {record.handle} has a URL value that cannot be redirected to.")
    raise web.HTTPFound(location=target)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        prefix = await node.store.secondary_prefix()
    except Exception as exc:  # noqa: BLE001 - any store failure means "not ready"
        return web.json_response({"status": "unavailable", "reason": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready", "prefix": prefix})


async def metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = node.metrics.render(await node.store.count_handles(), await node.store.count_prefixes(),
                               node.pipeline.cache)
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


ROUTES = (
    ("GET", "/healthz", healthz),
    ("GET", "/readyz", readyz),
    ("GET", "/metrics", metrics),
    ("GET", "/{handle:.+/.*}", proxy),
)
