"""The aiohttp application: routes, the error shape, per-operation metrics."""

from __future__ import annotations

import logging
import time

import orjson
from aiohttp import web

from protocol.codes import RC

from . import batch, prefixes, proxy, rest
from .bodies import RC_KEY
from .errors import ApiError
from .hs import http as hs_http
from .hs.service import HandleService
from .node import NODE, Node

log = logging.getLogger("idnode.http")

_STATUS_RC = {401: RC.AUTHENTICATION_NEEDED, 404: RC.HANDLE_NOT_FOUND, 413: RC.ERROR}


def _error(status: int, code: int, message: str, handle: str | None, headers=None) -> web.Response:
    body = {"responseCode": int(code), "handle": handle, "message": message}
    resp = web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)
    resp[RC_KEY] = int(code)
    return resp


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Every failure becomes the API's error shape; never a traceback."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message, exc.handle, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        handle = request.match_info.get("handle")
        return _error(exc.status, _STATUS_RC.get(exc.status, RC.ERROR), exc.reason, handle)
    except Exception:  # noqa: BLE001 - the last line of defence
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return _error(500, RC.ERROR, "internal error", request.match_info.get("handle"))


def _metrics_middleware(node: Node):
    ops: dict = {}

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        start = time.perf_counter()
        route_handler = request.match_info.route.handler
        op = ops.get(route_handler)
        if op is None:
            op = ops.setdefault(route_handler, node.metrics.op("rest", getattr(route_handler, "__name__", "other")))
        try:
            resp = await handler(request)
        except web.HTTPException as exc:     # redirects from the proxy
            op.observe(RC.SUCCESS if exc.status < 400 else RC.ERROR, time.perf_counter() - start)
            raise
        op.observe(resp.get(RC_KEY, RC.SUCCESS if resp.status < 400 else RC.ERROR), time.perf_counter() - start)
        return resp

    return middleware


def make_app(node: Node, hs: HandleService | None = None) -> web.Application:
    app = web.Application(client_max_size=node.settings.http.max_body_bytes,
                          middlewares=[_metrics_middleware(node), error_middleware])
    app[NODE] = node
    rest.add_routes(app)
    batch.add_routes(app)
    prefixes.add_routes(app)
    hs_http.add_routes(app, hs or HandleService(node))   # POST /{handle}: the Handle protocol over HTTP
    proxy.add_routes(app)          # last: its catch-all route must not shadow /api
    return app
