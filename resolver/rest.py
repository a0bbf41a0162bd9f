"""Handle.Net v9 compatible JSON REST API: ``/api/handles``.

Shapes and codes follow the Handle.Net REST API as pyhandle 1.5.0 expects:
GET 200+1 / 404+100 / 200+200 (nothing the caller may see matches); PUT
201+1 created, 200+1 replaced, 409+101 exists (``overwrite=false``);
DELETE 200+1, 404+100, 400+200 (no such index); 400+102 invalid handle;
401+402 when credentials are needed; 403+400 when the identity may not do
that. Every decision is the operations layer's (``resolver.core``); this
module parses requests and renders answers.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from protocol.codes import RC
from protocol.identifier import Handle, InvalidHandle, handle_key, parse_handle
from protocol.jsoncodec import JsonValueError, value_to_json, values_from_json
from registry.rules import MAX_PAGE

from .bodies import read_body, respond
from .cache import FOUND, Entry
from .core import View
from .core.reads import public_view
from .core.caller import Caller
from .core.errors import Refused
from .errors import RC_KEY, ApiError, error_response, from_refused
from .node import NODE, Node
from .query import Query

TRUE = {"true", "1", "yes"}
MAX_SKIPPED = 100_000           # identifiers a page-numbered listing may skip (use the cursor beyond)
_JSON_HEADERS = {"Content-Type": "application/json"}
_REST = "rest"                  # this front end's key in an entry's memo


def parse(text: str) -> Handle:
    try:
        return parse_handle(text)
    except InvalidHandle as exc:
        raise ApiError(400, RC.INVALID_HANDLE, str(exc), text) from None


def int_param(raw: str, name: str, low: int, high: int, handle: str | None) -> int:
    """An integer query parameter in ``low..high``; 400 naming it and its range otherwise."""
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError(400, RC.ERROR, f"{name} must be an integer in {low}..{high}", handle)
    return value


def indexes_of(request: web.Request, handle: str) -> list[int]:
    # "various" (Handle.Net): take the indexes from the body.
    return [int_param(raw, "index", 0, 0xFFFFFFFF, handle) for raw in request.query.getall("index", [])
            if raw != "various"]


async def caller_of(request: web.Request, node: Node, handle: str | None = None) -> Caller:
    """Who asks: Basic credentials proven by the operations layer (anonymous without)."""
    try:
        return await node.core.auth.basic(request.headers.get("Authorization"), request.remote or "?", "rest")
    except Refused as exc:
        raise from_refused(exc, handle) from None


async def identified(request: web.Request, node: Node, handle: str | None = None) -> Caller:
    """The caller, who must have proven an identity (401 + 402 otherwise)."""
    caller = await caller_of(request, node, handle)
    try:
        node.core.require_identity(caller)
    except Refused as exc:
        raise from_refused(exc, handle) from None
    return caller


def values_json(values) -> list[dict]:
    return [value_to_json(v) for v in values]


def view_body(view: View) -> dict:
    return {"responseCode": int(view.code), "handle": view.handle, "values": values_json(view.values)}


def rendering(view: View) -> tuple[int, bytes]:
    """A view as the REST hot path keeps it: (responseCode, JSON body)."""
    # An exact-size copy: orjson's result keeps its growth slack.
    return int(view.code), bytes(memoryview(orjson.dumps(view_body(view))))


def memoised(cache, entry: Entry, asked: str) -> tuple[int, bytes]:
    """The REST answer of an anonymous, unfiltered request for a found entry:
    (responseCode, JSON body), made once and kept in its memo (charged to ``cache``)."""
    memo = entry.memo
    found = memo.get(_REST) if memo is not None else None
    if found is None:
        found = rendering(public_view(entry, asked))
        if cache is not None:
            cache.remember(entry, _REST, found, len(found[1]) + 100)
        else:
            entry.memo = {_REST: found}
    return found


def _public_response(node: Node, entry: Entry, asked: str) -> web.Response:
    if entry.status != FOUND:
        view = public_view(entry, asked)
        return error_response(404, view.code, view.message, asked)
    code, body = memoised(node.pipeline.cache, entry, asked)
    resp = web.Response(body=body, headers=_JSON_HEADERS)
    resp[RC_KEY] = code
    return resp


def cached_get(request: web.Request) -> web.Response | None:
    """The hot half of :func:`get_handle`: an anonymous, unfiltered request the
    cache answers (for the text as given: only valid, NFC identifiers are ever
    cached, so a hit needs no parsing); None for everything else."""
    if request.query_string or "Authorization" in request.headers:
        return None
    node = request.app[NODE]
    text = request.match_info["handle"]
    entry = node.pipeline.cached(handle_key(text))
    return _public_response(node, entry, text) if entry is not None else None


async def get_handle(request: web.Request) -> web.Response:
    node = request.app[NODE]
    text = request.match_info["handle"]
    handle = parse(text)
    indexes = indexes_of(request, text)
    types = tuple(request.query.getall("type", []))
    caller = await caller_of(request, node, text)
    query = Query(handle, tuple(indexes), types, caller,
                  recursion=request.query.get("recursive", "false").lower() in TRUE)
    try:
        entry = await node.core.entry(query)
        if not (indexes or types or caller.identity or query.recursion):
            return _public_response(node, entry, handle.text)
        view = await node.core.view(entry, query)
    except Refused as exc:
        raise from_refused(exc, text) from None
    if view.elsewhere:
        raise ApiError(404, view.code, view.message, text)
    return respond(request, view_body(view))


get_handle.hot = cached_get       # type: ignore[attr-defined]


async def put_handle(request: web.Request) -> web.Response:
    node = request.app[NODE]
    text = request.match_info["handle"]
    handle = parse(text)
    caller = await identified(request, node, handle.text)
    body = await read_body(request, handle=handle.text)
    try:
        values = values_from_json(body, handle=handle.text)
    except JsonValueError as exc:
        raise ApiError(400, RC.INVALID_VALUE, str(exc), handle.text) from None
    overwrite = request.query.get("overwrite", "true").lower() in TRUE
    try:
        if request.query.getall("index", []):             # only the values named (Handle.Net: add values)
            indexes = indexes_of(request, handle.text)
            if indexes:
                values = [v for v in values if v.index in indexes]
            record = await node.core.add_values(caller, handle, values, overwrite=overwrite)
            status = 200
        else:
            mint = request.query.get("mintNewSuffix", "").lower() in TRUE
            record, created = await node.core.put(caller, handle, values, overwrite=overwrite, mint=mint)
            status = 201 if created else 200
    except Refused as exc:
        raise from_refused(exc, handle.text) from None
    return respond(request, {"responseCode": 1, "handle": record.handle}, status)


async def delete_handle(request: web.Request) -> web.Response:
    node = request.app[NODE]
    text = request.match_info["handle"]
    handle = parse(text)
    caller = await identified(request, node, handle.text)
    indexes = indexes_of(request, handle.text)
    try:
        if indexes:
            await node.core.remove_values(caller, handle, indexes)
        else:
            await node.core.delete(caller, handle)
    except Refused as exc:
        raise from_refused(exc, handle.text) from None
    return respond(request, {"responseCode": 1, "handle": handle.text})


async def list_handles(request: web.Request) -> web.Response:
    """``?prefix=P`` with ``cursor=`` (the ``next`` of the previous page) or,
    as Handle.Net does, ``page=`` numbers (up to :data:`MAX_SKIPPED` deep)."""
    node = request.app[NODE]
    raw = request.query.get("prefix", "")
    page_size = node.settings.http.page_size
    page = int_param(request.query.get("page", "0"), "page", 0, MAX_SKIPPED, raw)
    size = int_param(request.query.get("pageSize", str(page_size)), "pageSize", 1, page_size, raw)
    if page * size > MAX_SKIPPED:
        raise ApiError(400, RC.ERROR, f"page {page} is too deep; follow the 'next' cursor instead", raw)
    caller = await identified(request, node, raw)
    cursor = request.query.get("cursor") or None
    found: tuple[str, ...] = ()
    following = None
    try:
        past_end = False
        if cursor is None and page:         # page numbers: skip that many, as many per call as a call allows
            skip = page * size
            while skip > 0 and not past_end:
                step = await node.core.list_handles(caller, raw, cursor=cursor, limit=min(skip, MAX_PAGE))
                skip -= len(step.items)
                cursor = step.next
                past_end = cursor is None
        if not past_end:
            result = await node.core.list_handles(caller, raw, cursor=cursor, limit=size)
            found, following = result.items, result.next
    except Refused as exc:
        raise from_refused(exc, raw) from None
    return respond(request, {"responseCode": 1, "handle": raw, "prefix": raw, "page": page, "pageSize": size,
                             "handles": list(found), "next": following})


ROUTES = (
    ("GET", "/api/handles", list_handles),
    ("GET", "/api/handles/{handle:.+}", get_handle),
    ("PUT", "/api/handles/{handle:.+}", put_handle),
    ("DELETE", "/api/handles/{handle:.+}", delete_handle),
)
