"""The aiohttp application: the route table, the error shape, per-operation metrics.

Every route is registered here, in order, each handler wrapped once by
:func:`instrument`, which turns every failure into the API's error shape
(never a traceback) and counts the request under the handler's name with
metric children looked up at start-up. A handler may have a synchronous
``hot`` half (the cache hit of ``GET /api/handles/{handle}``): its answers
are counted but not timed, as the Handle protocol's fast tier. There is no
middleware, so a request costs nothing beyond its own handler. A last
catch-all answers paths no route serves with the same error shape.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from aiohttp import web

from protocol.codes import RC
from registry.errors import StoreUnavailable

from . import batch, prefixes, proxy, rest
from .core.errors import Refused, refused
from .errors import RC_KEY, ApiError, error_response, from_refused
from .hs import http as hs_http
from .hs.service import HandleService
from .node import NODE, Node

log = logging.getLogger("idnode.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_RC = {401: RC.AUTHENTICATION_NEEDED, 404: RC.HANDLE_NOT_FOUND, 413: RC.ERROR}


def instrument(node: Node, handler: Handler) -> Handler:
    """``handler`` with the error shape and its request metrics."""
    op = node.metrics.op("rest", handler.__name__)
    hot = getattr(handler, "hot", None)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        if hot is not None:
            resp = hot(request)
            if resp is not None:
                op.count(resp[RC_KEY])
                return resp
        start = time.perf_counter()
        try:
            resp = await handler(request)
        except ApiError as exc:
            resp = error_response(exc.status, exc.code, exc.message, exc.handle, exc.headers)
        except Refused as exc:
            api = from_refused(exc, request.match_info.get("handle"))
            resp = error_response(api.status, api.code, api.message, api.handle, api.headers)
        except web.HTTPException as exc:
            if exc.status < 400:               # the proxy's redirects
                op.observe(RC.SUCCESS, time.perf_counter() - start)
                raise
            resp = error_response(exc.status, _STATUS_RC.get(exc.status, RC.ERROR), exc.reason,
                          request.match_info.get("handle"))
        except StoreUnavailable as exc:     # the registry is away, wherever the request met it: RC 3, 503
            log.warning("store unavailable", extra={"path": request.path, "error": str(exc)})
            api = from_refused(refused(exc), request.match_info.get("handle"))
            resp = error_response(api.status, api.code, api.message, api.handle, api.headers)
        except Exception:  # noqa: BLE001 - the last line of defence
            log.exception("unhandled error", extra={"path": request.path, "method": request.method})
            resp = error_response(500, RC.ERROR, "internal error", request.match_info.get("handle"))
        op.observe(resp.get(RC_KEY, RC.SUCCESS if resp.status < 400 else RC.ERROR), time.perf_counter() - start)
        return resp

    endpoint.__name__ = handler.__name__
    return endpoint


async def no_such_endpoint(request: web.Request) -> web.Response:
    """405 when another method serves this path, else 404 (error paths only)."""
    allowed: set[str] = set()
    own = request.match_info.route.resource
    for resource in request.app.router.resources():
        if resource is not own:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise ApiError(405, RC.ERROR, f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}",
                       request.match_info.get("handle"), headers={"Allow": ",".join(sorted(allowed))})
    raise ApiError(404, RC.ERROR, f"no endpoint {request.method} {request.path}")


def make_app(node: Node, hs: HandleService) -> web.Application:
    app = web.Application(client_max_size=node.settings.http.max_body_bytes)
    app[NODE] = node
    app[hs_http.SERVICE] = hs
    routes = (*rest.ROUTES, *batch.ROUTES, *prefixes.ROUTES,
              *hs_http.ROUTES,     # POST /{handle}: the Handle protocol over HTTP
              *proxy.ROUTES,       # its GET /{handle} catch-all must come after /api
              ("*", "/{tail:.*}", no_such_endpoint))
    for method, path, handler in routes:
        app.router.add_route(method, path, instrument(node, handler))
    return app
