"""Batch endpoints: many resolutions or registrations in one request (JSON or CBOR).

``POST /api/batch/resolve``  ``{"handles": [h, ...]}`` -> per-handle results.
``POST /api/batch/register`` ``{"overwrite": false, "items": [{"handle", "values"}]}``.

Registration is all-or-report: items that are malformed, outside the
caller's prefixes, or (without overwrite) already registered are reported
with their own code and skipped; every other item is committed in ONE
transaction, so each item's ``responseCode`` 1 means exactly "written".
A body that is not a batch at all is refused whole (400) and writes nothing.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from protocol.codes import RC
from protocol.identifier import InvalidHandle, parse_handle
from protocol.jsoncodec import JsonValueError, value_to_json, values_from_json
from registry import errors as reg

from .bodies import read_body, respond
from .errors import ApiError, from_registry
from .node import NODE
from .rest import encode_public_record, lookup, principal_of, visible_values


def _items(body, key: str, limit: int) -> list:
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict) and isinstance(body.get(key), list):
        items = body[key]
    else:
        raise ApiError(400, RC.ERROR, f"body must be an object with a {key!r} list")
    if not items:
        raise ApiError(400, RC.ERROR, f"{key!r} is empty")
    if len(items) > limit:
        raise ApiError(413, RC.ERROR, f"at most {limit} items per batch, got {len(items)}")
    return items


async def batch_resolve(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await read_body(request, allow_cbor=True)
    items = _items(body, "handles", node.settings.http.batch_max_items)
    principal = await principal_of(request, node, None) if "Authorization" in request.headers else None
    results = []
    for text in items:
        if not isinstance(text, str):
            results.append({"handle": str(text), "responseCode": int(RC.INVALID_HANDLE), "message": "not a string"})
            continue
        try:
            handle = parse_handle(text)
        except InvalidHandle as exc:
            results.append({"handle": text, "responseCode": int(RC.INVALID_HANDLE), "message": str(exc)})
            continue
        entry = await lookup(node, handle)
        if not entry.found:
            results.append({"handle": handle.text, "responseCode": int(RC.HANDLE_NOT_FOUND)})
            continue
        if principal is None:       # anonymous: the entry's cached REST answer is this item
            results.append(orjson.loads(entry.rest(encode_public_record)))
            continue
        record = entry.record
        admin = principal is not None and principal.may_admin(handle.prefix)
        values = visible_values(record.values, admin=admin)
        results.append({"handle": record.handle, "responseCode": int(RC.SUCCESS if values else RC.VALUES_NOT_FOUND),
                        "values": [value_to_json(v) for v in values]})
    return respond(request, {"responseCode": 1, "results": results}, allow_cbor=True)


async def batch_register(request: web.Request) -> web.Response:
    node = request.app[NODE]
    principal = await principal_of(request, node, None)
    if principal is None:
        raise ApiError(401, RC.AUTHENTICATION_NEEDED, "authentication needed",
                       headers={"WWW-Authenticate": 'Basic realm="handle"'})
    body = await read_body(request, allow_cbor=True)
    items = _items(body, "items", node.settings.http.batch_max_items)
    overwrite = bool(body.get("overwrite", False)) if isinstance(body, dict) else False
    results: list[dict | None] = [None] * len(items)
    good: list[tuple[int, str, list]] = []
    for i, item in enumerate(items):
        text = item.get("handle") if isinstance(item, dict) else None
        if not isinstance(text, str):
            results[i] = {"handle": str(text), "responseCode": int(RC.INVALID_HANDLE), "message": "item needs a 'handle' string"}
            continue
        try:
            handle = parse_handle(text)
            values = values_from_json(item)
        except InvalidHandle as exc:
            results[i] = {"handle": text, "responseCode": int(RC.INVALID_HANDLE), "message": str(exc)}
            continue
        except JsonValueError as exc:
            results[i] = {"handle": text, "responseCode": int(RC.INVALID_VALUE), "message": str(exc)}
            continue
        if not principal.may_admin(handle.prefix):
            results[i] = {"handle": text, "responseCode": int(RC.NOT_AN_ADMIN),
                          "message": f"{principal.identity} is not an admin of prefix {handle.prefix}"}
            continue
        good.append((i, handle.text, values))
    if good:
        try:
            outcomes = await node.store.register_batch([(h, v) for _, h, v in good],
                                                       overwrite=overwrite, actor=principal.identity)
        except reg.RegistryError as exc:
            raise from_registry(exc, None) from None
        for (i, _, _), outcome in zip(good, outcomes):
            results[i] = {"handle": outcome.handle, "responseCode": int(outcome.code)}
            if outcome.message:
                results[i]["message"] = outcome.message
    written = sum(1 for r in results if r and r["responseCode"] == RC.SUCCESS)
    return respond(request, {"responseCode": 1, "written": written, "results": results}, allow_cbor=True)


ROUTES = (
    ("POST", "/api/batch/resolve", batch_resolve),
    ("POST", "/api/batch/register", batch_register),
)
