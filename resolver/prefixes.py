"""Enterprise prefix management over REST (the operations layer decides who may).

``GET /api/prefixes``, ``GET/PUT /api/prefixes/{prefix}``,
``POST /api/prefixes/{prefix}/disable`` and ``/enable``. A prefix created
over REST takes its admin secret from the request body (``password``): the
node never returns a secret over the network.
"""

from __future__ import annotations

from aiohttp import web

from protocol.codes import RC

from .bodies import read_body, respond
from .core.errors import Refused
from .errors import ApiError, from_refused
from .node import NODE
from .rest import identified


def _shape(info) -> dict:
    return {"prefix": info.prefix, "owner": info.owner, "creditCode": info.credit_code, "contact": info.contact,
            "state": info.state, "created": info.created}


async def list_prefixes(request: web.Request) -> web.Response:
    node = request.app[NODE]
    caller = await identified(request, node)
    try:
        infos = await node.core.list_prefixes(caller)
    except Refused as exc:
        raise from_refused(exc, None) from None
    return respond(request, {"responseCode": 1, "handle": None, "prefixes": [_shape(p) for p in infos]})


async def show_prefix(request: web.Request) -> web.Response:
    node = request.app[NODE]
    raw = request.match_info["prefix"]
    caller = await identified(request, node, raw)
    try:
        info = await node.core.show_prefix(caller, raw)
    except Refused as exc:
        raise from_refused(exc, raw) from None
    return respond(request, {"responseCode": 1, "handle": info.prefix, **_shape(info)})


async def create_prefix(request: web.Request) -> web.Response:
    node = request.app[NODE]
    raw = request.match_info["prefix"]
    caller = await identified(request, node, raw)
    body = await read_body(request, handle=raw)
    if not isinstance(body, dict):
        raise ApiError(400, RC.ERROR, "body must be an object", raw)
    fields = {k: body.get(k, "") for k in ("owner", "creditCode", "contact", "password")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ApiError(400, RC.ERROR, "owner, creditCode, contact and password must be strings", raw)
    if not fields["password"]:
        raise ApiError(400, RC.INVALID_VALUE, "give the admin secret as 'password': the node never sends one back",
                       raw)
    try:
        info, _ = await node.core.create_prefix(caller, raw, fields["owner"], credit_code=fields["creditCode"],
                                                contact=fields["contact"], password=fields["password"])
    except Refused as exc:
        raise from_refused(exc, raw) from None
    return respond(request, {"responseCode": 1, "handle": info.prefix, **_shape(info),
                             "admin": f"300:{info.prefix}/ADMIN"}, 201)


def _state_setter(enabled: bool):
    async def set_state(request: web.Request) -> web.Response:
        node = request.app[NODE]
        raw = request.match_info["prefix"]
        caller = await identified(request, node, raw)
        try:
            info = await node.core.set_prefix_state(caller, raw, enabled)
        except Refused as exc:
            raise from_refused(exc, raw) from None
        return respond(request, {"responseCode": 1, "handle": info.prefix, **_shape(info)})
    set_state.__name__ = "enable_prefix" if enabled else "disable_prefix"
    return set_state


ROUTES = (
    ("GET", "/api/prefixes", list_prefixes),
    ("GET", "/api/prefixes/{prefix}", show_prefix),
    ("PUT", "/api/prefixes/{prefix}", create_prefix),
    ("POST", "/api/prefixes/{prefix}/disable", _state_setter(False)),
    ("POST", "/api/prefixes/{prefix}/enable", _state_setter(True)),
)
