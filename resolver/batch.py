"""Batch endpoints: many resolutions or registrations in one request (JSON or CBOR).

``POST /api/batch/resolve``  ``{"handles": [h, ...]}`` -> per-handle results.
``POST /api/batch/register`` ``{"overwrite": false, "items": [{"handle", "values"}]}``.

Registration reports every item with its own code: ``1`` means written,
anything else means that item wrote nothing (malformed, not permitted, or,
without overwrite, already registered); every valid, permitted item is
written, in one transaction on the embedded store. A body that is not a
batch at all is refused whole (400) and writes nothing.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from protocol.codes import RC
from protocol.identifier import InvalidHandle, parse_handle
from protocol.jsoncodec import JsonValueError, values_from_json

from .bodies import read_body, respond
from .cache import FOUND
from .core.errors import Refused
from .errors import ApiError, from_refused
from .node import NODE
from .query import Query
from .rest import caller_of, identified, memoised, view_body


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
    caller = await caller_of(request, node)
    body = await read_body(request, allow_cbor=True)
    items = _items(body, "handles", node.settings.http.batch_max_items)
    core = node.core
    cached, cache = node.pipeline.cached, node.pipeline.cache
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
        try:
            if caller.identity is None:
                entry = cached(handle.key) or await core.entry(Query(handle))
                if entry.status == FOUND:                         # the entry's memoised REST answer
                    results.append(orjson.loads(memoised(cache, entry, handle.text)[1]))
                    continue
                view = core.public_view(entry, handle.text)
            else:
                query = Query(handle, caller=caller)
                view = await core.view(await core.entry(query), query)
        except Refused as exc:
            results.append({"handle": handle.text, "responseCode": exc.code, "message": exc.message})
            continue
        result = view_body(view) if not view.elsewhere else \
            {"handle": view.handle, "responseCode": int(view.code), "message": view.message}
        results.append(result)
    return respond(request, {"responseCode": 1, "results": results}, allow_cbor=True)


async def batch_register(request: web.Request) -> web.Response:
    node = request.app[NODE]
    caller = await identified(request, node)
    body = await read_body(request, allow_cbor=True)
    items = _items(body, "items", node.settings.http.batch_max_items)
    overwrite = bool(body.get("overwrite", False)) if isinstance(body, dict) else False
    results: list[dict | None] = [None] * len(items)
    parsed: list[tuple[int, str, list]] = []
    for i, item in enumerate(items):
        text = item.get("handle") if isinstance(item, dict) else None
        if not isinstance(text, str):
            results[i] = {"handle": str(text), "responseCode": int(RC.INVALID_HANDLE),
                          "message": "item needs a 'handle' string"}
            continue
        try:
            values = values_from_json(item)
        except JsonValueError as exc:
            results[i] = {"handle": text, "responseCode": int(RC.INVALID_VALUE), "message": str(exc)}
            continue
        parsed.append((i, text, values))
    if parsed:
        try:
            outcomes = await node.core.register_batch(caller, [(t, v) for _, t, v in parsed], overwrite=overwrite)
        except Refused as exc:
            raise from_refused(exc, None) from None
        for (i, _, _), outcome in zip(parsed, outcomes):
            results[i] = {"handle": outcome.handle, "responseCode": int(outcome.code)}
            if outcome.message:
                results[i]["message"] = outcome.message
    written = sum(1 for r in results if r and r["responseCode"] == RC.SUCCESS)
    return respond(request, {"responseCode": 1, "written": written, "results": results}, allow_cbor=True)


ROUTES = (
    ("POST", "/api/batch/resolve", batch_resolve),
    ("POST", "/api/batch/register", batch_register),
)
