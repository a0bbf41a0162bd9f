"""Enterprise prefix management for the node admin (``300:0.NA/<secondary>``).

``GET /api/prefixes``, ``GET/PUT /api/prefixes/{prefix}``,
``POST /api/prefixes/{prefix}/disable`` and ``/enable``. A prefix created
over REST takes its admin secret from the request body (``password``): the
node never returns a secret.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from protocol.codes import RC
from protocol.identifier import InvalidHandle, parse_prefix
from registry import errors as reg
from registry import provision

from .bodies import read_body, respond
from .errors import ApiError, from_registry
from .node import NODE
from .rest import require_admin


def _prefix(request: web.Request) -> str:
    raw = request.match_info["prefix"]
    try:
        return parse_prefix(raw)
    except InvalidHandle as exc:
        raise ApiError(400, RC.INVALID_HANDLE, str(exc), raw) from None


def _shape(info) -> dict:
    d = asdict(info)
    return {"prefix": d["prefix"], "owner": d["owner"], "creditCode": d["credit_code"],
            "contact": d["contact"], "state": d["state"], "created": d["created"]}


async def _node_admin(request: web.Request, prefix: str | None):
    node = request.app[NODE]
    principal = await require_admin(request, node, None, prefix)
    return node, principal


async def list_prefixes(request: web.Request) -> web.Response:
    node, _ = await _node_admin(request, None)
    items = [_shape(p) for p in await node.store.list_prefixes()]
    return respond(request, {"responseCode": 1, "handle": None, "prefixes": items})


async def show_prefix(request: web.Request) -> web.Response:
    node = request.app[NODE]
    prefix = _prefix(request)
    await require_admin(request, node, prefix, prefix)
    info = await node.store.get_prefix(prefix)
    if info is None:
        raise ApiError(404, RC.HANDLE_NOT_FOUND, f"prefix {prefix} is not allocated on this node", prefix)
    return respond(request, {"responseCode": 1, "handle": prefix, **_shape(info)})


async def create_prefix(request: web.Request) -> web.Response:
    prefix = _prefix(request)
    node, principal = await _node_admin(request, prefix)
    body = await read_body(request, handle=prefix)
    if not isinstance(body, dict):
        raise ApiError(400, RC.ERROR, "body must be an object", prefix)
    fields = {k: body.get(k, "") for k in ("owner", "creditCode", "contact", "password")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ApiError(400, RC.ERROR, "owner, creditCode, contact and password must be strings", prefix)
    try:
        await provision.create_prefix(node.store, prefix, fields["owner"], credit_code=fields["creditCode"],
                                      contact=fields["contact"], password=fields["password"],
                                      actor=principal.identity)
    except reg.RegistryError as exc:
        raise from_registry(exc, prefix) from None
    except ValueError as exc:
        raise ApiError(400, RC.INVALID_HANDLE, str(exc), prefix) from None
    info = await node.store.get_prefix(prefix)
    return respond(request, {"responseCode": 1, "handle": prefix, **_shape(info),
                             "admin": f"300:{prefix}/ADMIN"}, 201)


def _state_setter(state: str):
    async def set_state(request: web.Request) -> web.Response:
        prefix = _prefix(request)
        node, principal = await _node_admin(request, prefix)
        try:
            info = await node.store.set_prefix_state(prefix, state, actor=principal.identity)
        except reg.RegistryError as exc:
            raise from_registry(exc, prefix) from None
        return respond(request, {"responseCode": 1, "handle": prefix, **_shape(info)})
    set_state.__name__ = f"{state.removesuffix('d')}_prefix"
    return set_state


ROUTES = (
    ("GET", "/api/prefixes", list_prefixes),
    ("GET", "/api/prefixes/{prefix}", show_prefix),
    ("PUT", "/api/prefixes/{prefix}", create_prefix),
    ("POST", "/api/prefixes/{prefix}/disable", _state_setter("disabled")),
    ("POST", "/api/prefixes/{prefix}/enable", _state_setter("enabled")),
)
