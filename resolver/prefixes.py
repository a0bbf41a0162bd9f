"""Enterprise prefix management over REST (the operations layer decides who may).

``GET /api/prefixes``, ``GET/PUT /api/prefixes/{prefix}``,
``POST /api/prefixes/{prefix}/disable`` and ``/enable``, ``PUT
/api/prefixes/{prefix}/password``, ``POST /api/prefixes/{prefix}/keys``,
``PUT`` and ``DELETE /api/prefixes/{prefix}/delegation`` (body ``{"site":
"HOST:PORT"}`` or ``{"service": HANDLE}``: the prefix served by the
enterprise's own Handle server; ``GET`` shows it as ``delegation``). A
prefix created (or its secret replaced) over REST takes its admin secret
from the request body (``password``): the node never returns a secret over
the network. Given ``publicKey`` (PEM) instead, the admin is a key identity
(HS_PUBKEY at 300, no secret); ``/keys`` adds another key (``publicKey``,
optional ``index``) to the prefix's admin handle.
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
        delegation = await node.core.delegation(caller, raw)
    except Refused as exc:
        raise from_refused(exc, raw) from None
    return respond(request, {"responseCode": 1, "handle": info.prefix, **_shape(info), "delegation": delegation})


async def delegate(request: web.Request) -> web.Response:
    """Point the prefix at the body's ``site`` (``HOST:PORT``) or ``service`` (a handle)."""
    node = request.app[NODE]
    raw = request.match_info["prefix"]
    caller = await identified(request, node, raw)
    body = await _object_body(request, raw)
    site, service = body.get("site"), body.get("service")
    if not all(v is None or isinstance(v, str) for v in (site, service)):
        raise ApiError(400, RC.INVALID_VALUE, "'site' and 'service' are strings", raw)
    try:
        delegation = await node.core.delegate_prefix(caller, raw, site=site, service=service)
    except Refused as exc:
        raise from_refused(exc, raw) from None
    return respond(request, {"responseCode": 1, "handle": raw, "delegation": delegation})


async def undelegate(request: web.Request) -> web.Response:
    node = request.app[NODE]
    raw = request.match_info["prefix"]
    caller = await identified(request, node, raw)
    try:
        await node.core.undelegate_prefix(caller, raw)
    except Refused as exc:
        raise from_refused(exc, raw) from None
    return respond(request, {"responseCode": 1, "handle": raw, "delegation": None})


async def _object_body(request: web.Request, raw: str) -> dict:
    """The request's body, which must be a JSON (or CBOR) object."""
    body = await read_body(request, handle=raw)
    if not isinstance(body, dict):
        raise ApiError(400, RC.ERROR, "body must be an object", raw)
    return body


async def create_prefix(request: web.Request) -> web.Response:
    node = request.app[NODE]
    raw = request.match_info["prefix"]
    caller = await identified(request, node, raw)
    body = await _object_body(request, raw)
    fields = {k: body.get(k, "") for k in ("owner", "creditCode", "contact", "password", "publicKey")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise ApiError(400, RC.ERROR, "owner, creditCode, contact, password and publicKey must be strings", raw)
    if fields["password"] and fields["publicKey"]:
        raise ApiError(400, RC.INVALID_VALUE, "give the admin 'password' or 'publicKey', not both", raw)
    if not fields["password"] and not fields["publicKey"]:
        raise ApiError(400, RC.INVALID_VALUE, "give the admin secret as 'password' (the node never sends one back) "
                       "or its public key (PEM) as 'publicKey'", raw)
    try:
        info, _ = await node.core.create_prefix(caller, raw, fields["owner"], credit_code=fields["creditCode"],
                                                contact=fields["contact"], password=fields["password"] or None,
                                                public_key=fields["publicKey"] or None)
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


async def set_password(request: web.Request) -> web.Response:
    """Replace the secret of ``300:<prefix>/ADMIN`` with the body's ``password``."""
    node = request.app[NODE]
    raw = request.match_info["prefix"]
    caller = await identified(request, node, raw)
    body = await read_body(request, handle=raw)
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(password, str) or not password:
        raise ApiError(400, RC.INVALID_VALUE, "give the new admin secret as 'password': the node never sends "
                       "one back", raw)
    try:
        await node.core.rotate_prefix_secret(caller, raw, password)
        info = await node.core.show_prefix(caller, raw)
    except Refused as exc:
        raise from_refused(exc, raw) from None
    return respond(request, {"responseCode": 1, "handle": info.prefix, **_shape(info),
                             "admin": f"300:{info.prefix}/ADMIN"})


async def add_key(request: web.Request) -> web.Response:
    """Add the body's ``publicKey`` (PEM) to ``<prefix>/ADMIN`` at ``index``
    (optional: the next free index from 301)."""
    node = request.app[NODE]
    raw = request.match_info["prefix"]
    caller = await identified(request, node, raw)
    body = await _object_body(request, raw)
    pem, index = body.get("publicKey"), body.get("index")
    if not isinstance(pem, str) or not pem:
        raise ApiError(400, RC.INVALID_VALUE, "give the public key (PEM) as 'publicKey'", raw)
    if index is not None and (type(index) is not int or not 0 < index <= 0xFFFFFFFF):
        raise ApiError(400, RC.INVALID_VALUE, "index must be an integer in 1..4294967295", raw)
    try:
        key_index, admin_index = await node.core.add_prefix_key(caller, raw, pem, index)
        info = await node.core.show_prefix(caller, raw)
    except Refused as exc:
        raise from_refused(exc, raw) from None
    handle = f"{info.prefix}/ADMIN"
    return respond(request, {"responseCode": 1, "handle": handle, "index": key_index, "adminIndex": admin_index,
                             "identity": f"{key_index}:{handle}"}, 201)


ROUTES = (
    ("GET", "/api/prefixes", list_prefixes),
    ("GET", "/api/prefixes/{prefix}", show_prefix),
    ("PUT", "/api/prefixes/{prefix}", create_prefix),
    ("POST", "/api/prefixes/{prefix}/disable", _state_setter(False)),
    ("POST", "/api/prefixes/{prefix}/enable", _state_setter(True)),
    ("POST", "/api/prefixes/{prefix}/keys", add_key),
    ("PUT", "/api/prefixes/{prefix}/password", set_password),
    ("PUT", "/api/prefixes/{prefix}/delegation", delegate),
    ("DELETE", "/api/prefixes/{prefix}/delegation", undelegate),
)
