"""Handle.Net v9 compatible JSON REST API: ``/api/handles``.

Shapes and codes follow the Handle.Net REST API as pyhandle 1.5.0 expects:
GET 200+1 / 404+100 / 200+200 (filters matched nothing); PUT 201+1 created,
200+1 replaced, 409+101 exists (``overwrite=false``); DELETE 200+1,
404+100, 400+200 (no such index); 400+102 invalid handle; 401+402 when
credentials are needed; 403+400 when the identity is not an admin of the
handle's prefix.
"""

from __future__ import annotations

import uuid

import orjson
from aiohttp import web

from protocol.codes import RC
from protocol.identifier import Handle, InvalidHandle, handle_key, parse_handle, parse_prefix
from protocol.jsoncodec import JsonValueError, value_to_json, values_from_json
from protocol.values import HandleValue, readable
from registry import errors as reg

from .auth import AuthError, Principal
from .bodies import RC_KEY, read_body, respond
from .errors import ApiError, from_registry
from .node import Node, NODE

TRUE = {"true", "1", "yes"}
_JSON_HEADERS = {"Content-Type": "application/json"}


def _parse(text: str) -> Handle:
    try:
        return parse_handle(text)
    except InvalidHandle as exc:
        raise ApiError(400, RC.INVALID_HANDLE, str(exc), text) from None


def _indexes(request: web.Request, handle: str) -> list[int]:
    out = []
    for raw in request.query.getall("index", []):
        if raw == "various":            # Handle.Net: take the indexes from the body
            continue
        try:
            out.append(int(raw))
        except ValueError:
            raise ApiError(400, RC.ERROR, f"index must be an integer, got {raw!r}", handle) from None
    return out


async def principal_of(request: web.Request, node: Node, handle: str | None) -> Principal | None:
    try:
        return await node.auth.authenticate(request.headers.get("Authorization"), request.remote or "?")
    except AuthError as exc:
        node.metrics.auth_failures.labels("rest").inc()
        raise ApiError(401, exc.code, exc.message, handle,
                       headers={"WWW-Authenticate": 'Basic realm="handle"'}) from None


async def require_admin(request: web.Request, node: Node, prefix: str | None, handle: str | None) -> Principal:
    """The authenticated admin of ``prefix``; ``prefix=None`` requires the node admin."""
    principal = await principal_of(request, node, handle)
    if principal is None:
        raise ApiError(401, RC.AUTHENTICATION_NEEDED, "authentication needed", handle,
                       headers={"WWW-Authenticate": 'Basic realm="handle"'})
    allowed = principal.is_node_admin if prefix is None else principal.may_admin(prefix)
    if not allowed:
        what = "the node admin" if prefix is None else f"an admin of prefix {prefix}"
        raise ApiError(403, RC.NOT_AN_ADMIN, f"{principal.identity} is not {what}", handle)
    return principal


def visible_values(values, *, admin: bool, indexes=(), types=()) -> list[HandleValue]:
    """Values a reader may see (:func:`protocol.values.readable`), filtered."""
    wanted_types = {t.lower() for t in types}
    out = []
    for v in readable(values, admin=admin):
        if indexes and v.index not in indexes:
            continue
        if wanted_types and v.type.lower() not in wanted_types:
            continue
        out.append(v)
    return out


def encode_public_record(entry) -> bytes:
    """The REST body of an unfiltered, anonymous resolution (kept in the cache entry)."""
    return orjson.dumps({"responseCode": int(RC.SUCCESS if entry.has_public else RC.VALUES_NOT_FOUND),
                         "handle": entry.handle, "values": [value_to_json(v) for v in entry.public]})


async def lookup(node: Node, handle: Handle):
    """The pipeline's answer (cache, then registry), registry errors in the API's shape."""
    try:
        return await node.pipeline.resolve(handle)
    except reg.RegistryError as exc:
        raise from_registry(exc, handle.text) from None


async def get_handle(request: web.Request) -> web.Response:
    node = request.app[NODE]
    text = request.match_info["handle"]
    if not request.query_string and "Authorization" not in request.headers:
        # The hot path: a cached answer for the text as given. Only valid,
        # NFC identifiers are ever cached, so a hit needs no parsing.
        entry = node.pipeline.cached(handle_key(text))
        if entry is not None:
            if not entry.found:
                raise ApiError(404, RC.HANDLE_NOT_FOUND, "handle not found", text)
            resp = web.Response(body=entry.rest(encode_public_record), headers=_JSON_HEADERS)
            resp[RC_KEY] = RC.SUCCESS if entry.has_public else RC.VALUES_NOT_FOUND
            return resp
    handle = _parse(text)
    entry = await lookup(node, handle)
    if not entry.found:
        raise ApiError(404, RC.HANDLE_NOT_FOUND, "handle not found", handle.text)
    indexes = _indexes(request, text)
    types = request.query.getall("type", [])
    if not (indexes or types or "Authorization" in request.headers):
        resp = web.Response(body=entry.rest(encode_public_record), headers=_JSON_HEADERS)
        resp[RC_KEY] = int(RC.SUCCESS if entry.has_public else RC.VALUES_NOT_FOUND)
        return resp
    principal = await principal_of(request, node, text) if "Authorization" in request.headers else None
    admin = principal is not None and principal.may_admin(handle.prefix)
    record = entry.record
    values = visible_values(record.values, admin=admin, indexes=indexes, types=types)
    code = RC.SUCCESS if values else RC.VALUES_NOT_FOUND
    body = {"responseCode": int(code), "handle": record.handle, "values": [value_to_json(v) for v in values]}
    return respond(request, body)


async def put_handle(request: web.Request) -> web.Response:
    node = request.app[NODE]
    text = request.match_info["handle"]
    mint = request.query.get("mintNewSuffix", "").lower() in TRUE
    if mint:
        prefix, _, stem = text.partition("/")
        text = f"{prefix}/{stem}{uuid.uuid4()}"
    handle = _parse(text)
    principal = await require_admin(request, node, handle.prefix, handle.text)
    body = await read_body(request, handle=handle.text)
    try:
        values = values_from_json(body, handle=handle.text)
    except JsonValueError as exc:
        raise ApiError(400, RC.INVALID_VALUE, str(exc), handle.text) from None
    indexes = _indexes(request, handle.text)
    partial = bool(request.query.getall("index", []))
    overwrite = request.query.get("overwrite", "true").lower() in TRUE
    if partial:
        if indexes:
            values = [v for v in values if v.index in indexes]
        mode = "merge"
    else:
        mode = "replace" if overwrite and not mint else "create"
    try:
        existed = mode == "replace" and await node.store.get_handle(handle.text) is not None
        record = await node.store.put_handle(handle.text, values, mode=mode, actor=principal.identity)
    except reg.RegistryError as exc:
        raise from_registry(exc, handle.text) from None
    status = 200 if mode == "merge" or existed else 201
    return respond(request, {"responseCode": 1, "handle": record.handle}, status)


async def delete_handle(request: web.Request) -> web.Response:
    node = request.app[NODE]
    text = request.match_info["handle"]
    handle = _parse(text)
    principal = await require_admin(request, node, handle.prefix, handle.text)
    indexes = _indexes(request, handle.text)
    try:
        if indexes:
            await node.store.remove_values(handle.text, indexes, actor=principal.identity)
        else:
            await node.store.delete_handle(handle.text, actor=principal.identity)
    except reg.RegistryError as exc:
        raise from_registry(exc, handle.text) from None
    return respond(request, {"responseCode": 1, "handle": handle.text})


async def list_handles(request: web.Request) -> web.Response:
    node = request.app[NODE]
    raw = request.query.get("prefix", "")
    try:
        prefix = parse_prefix(raw)
    except InvalidHandle as exc:
        raise ApiError(400, RC.INVALID_HANDLE, str(exc), raw) from None
    await require_admin(request, node, prefix, raw)
    try:
        page = int(request.query.get("page", "0"))
        size = int(request.query.get("pageSize", str(node.settings.http.page_size)))
    except ValueError:
        raise ApiError(400, RC.ERROR, "page and pageSize must be integers", raw) from None
    if page < 0 or not 0 < size <= node.settings.http.page_size:
        raise ApiError(400, RC.ERROR, f"page must be >= 0 and pageSize 1..{node.settings.http.page_size}", raw)
    if await node.store.get_prefix(prefix) is None:
        raise ApiError(404, RC.HANDLE_NOT_FOUND, f"prefix {prefix} is not allocated on this node", raw)
    handles = await node.store.list_handles(prefix, page=page, page_size=size)
    return respond(request, {"responseCode": 1, "handle": prefix, "prefix": prefix,
                             "page": page, "pageSize": size, "handles": handles})


ROUTES = (
    ("GET", "/api/handles", list_handles),
    ("GET", "/api/handles/{handle:.+}", get_handle),
    ("PUT", "/api/handles/{handle:.+}", put_handle),
    ("DELETE", "/api/handles/{handle:.+}", delete_handle),
)
