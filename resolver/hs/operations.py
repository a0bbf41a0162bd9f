"""What each request does to the registry: resolution and administration.

No transport and no message framing here: a request body (and, for
administration, the authenticated :class:`Identity`) in, a response body
out, or :class:`Refused` carrying the response code. Every change goes
through the same Store methods as the REST API, with the identity as the
audit log's actor.

Semantics follow Handle.Net 9's ``HandleServer``: index and type filters
select the union of what they name; a slashless handle means ``0.NA/<it>``;
a value without admin write cannot be modified; removing or modifying an
index the handle lacks is RC 200. Values are stamped with the server's time.
"""

from __future__ import annotations

import uuid
from typing import AsyncIterator, Sequence

from protocol.codes import RC
from protocol.handle import (AddValueRequest, CreateHandleRequest, CreateHandleResponse, DeleteHandleRequest,
                             EmptyResponse, ListHandlesRequest, ListHandlesResponse, ModifyValueRequest, RawBody,
                             RemoveValueRequest, ResolutionRequest, ResolutionResponse)
from protocol.identifier import Handle, InvalidHandle, parse_handle, parse_prefix
from protocol.values import HandleValue, Perm, readable
from protocol.valuetypes import AdminPerm, has_type
from registry.errors import RegistryError
from registry.model import HandleRecord
from registry.store import Store

from ..pipeline import Pipeline
from .permissions import NA_PREFIX, Identity, add_perms, allowed, modify_perms, remove_perms

LIST_BATCH = 500        # handles per list-handles message (<= 130 KB each)


class Refused(Exception):
    """The request is answered with an error response code."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = int(code)
        self.message = message


def parse(text: str) -> Handle:
    """A request's handle; slashless means the prefix handle ``0.NA/<text>``."""
    if "/" not in text:
        text = f"{NA_PREFIX}/{text}"
    try:
        return parse_handle(text)
    except InvalidHandle as exc:
        raise Refused(RC.INVALID_HANDLE, str(exc)) from None


async def _record(store: Store, handle: Handle) -> HandleRecord:
    record = await store.get_handle(handle.text)
    if record is None:
        raise Refused(RC.HANDLE_NOT_FOUND, "handle not found")
    return record


async def _check(store: Store, identity: Identity, handle: Handle, values, needed: int) -> None:
    if not await allowed(store, identity, handle.prefix, values, needed):
        raise Refused(RC.NOT_AN_ADMIN, f"{identity.actor} is not an admin of {handle.text} with that permission")


def _stamp(values: Sequence[HandleValue], now: int) -> list[HandleValue]:
    return [v.with_(timestamp=now) for v in values]


def _check_new_values(values: Sequence[HandleValue]) -> None:
    """Handle.Net's checks before it challenges: indexes positive and distinct."""
    seen = set()
    for v in values:
        if v.index <= 0:
            raise Refused(RC.INVALID_VALUE, "value indexes must be positive")
        if v.index in seen:
            raise Refused(RC.VALUE_ALREADY_EXISTS, f"index conflict for {v.index}")
        seen.add(v.index)


# ------------------------------------------------------------------ resolution

def select(values: Sequence[HandleValue], indexes: Sequence[int], types: Sequence[str]) -> list[HandleValue]:
    """The values a request's filters name: all without filters, else those
    whose index or type (or a parent type) is asked for."""
    if not indexes and not types:
        return list(values)
    wanted = set(indexes)
    return [v for v in values if v.index in wanted or any(has_type(v.type, t) for t in types)]


NOT_FOUND = "handle not found"


async def resolve(pipeline: Pipeline, store: Store, body: ResolutionRequest,
                  identity: Identity | None = None) -> ResolutionResponse | RawBody:
    """Resolution through the pipeline (cache, then registry). The common
    case, an anonymous unfiltered request naming the handle as registered,
    answers with the body encoded once per cache entry."""
    handle = parse(body.handle)
    entry = await pipeline.resolve(handle)
    if not entry.found:
        raise Refused(RC.HANDLE_NOT_FOUND, NOT_FOUND)
    if identity is None and not body.indexes and not body.types and entry.has_public \
            and body.handle == entry.handle:
        return RawBody(entry.hs_body)
    record = entry.record
    admin = identity is not None and await allowed(store, identity, handle.prefix, record.values,
                                                   AdminPerm.READ_VALUE)
    values = readable(select(record.values, body.indexes, body.types), admin=admin)
    if not values:
        raise Refused(RC.VALUES_NOT_FOUND, "no values match")
    return ResolutionResponse(body.handle, tuple(values))


# ------------------------------------------------------------------ administration

def precheck(body) -> None:
    """What is refused before challenging (Handle.Net does the same)."""
    if isinstance(body, ListHandlesRequest):
        list_prefix(body.handle)
        return
    parse(body.handle)
    if isinstance(body, (CreateHandleRequest, AddValueRequest, ModifyValueRequest)):
        if not body.values and not isinstance(body, CreateHandleRequest):
            raise Refused(RC.INVALID_VALUE, "value list was empty")
        _check_new_values(body.values)


async def _write(coro):
    try:
        return await coro
    except RegistryError as exc:
        raise Refused(exc.code, str(exc) or type(exc).__name__) from None


async def create(store: Store, body: CreateHandleRequest, identity: Identity, now: int, *,
                 mint: bool = False) -> CreateHandleResponse:
    text = f"{body.handle}{uuid.uuid4()}" if mint else body.handle
    handle = parse(text)
    await _check(store, identity, handle, None, AdminPerm.ADD_HANDLE)
    record = await _write(store.put_handle(handle.text, _stamp(body.values, now), mode="create",
                                           actor=identity.actor))
    return CreateHandleResponse(record.handle if mint else None)


async def delete(store: Store, body: DeleteHandleRequest, identity: Identity) -> EmptyResponse:
    handle = parse(body.handle)
    record = await _record(store, handle)
    await _check(store, identity, handle, record.values, AdminPerm.DELETE_HANDLE)
    await _write(store.delete_handle(handle.text, actor=identity.actor))
    return EmptyResponse()


async def add_values(store: Store, body: AddValueRequest, identity: Identity, now: int, *,
                     overwrite: bool = False) -> EmptyResponse:
    handle = parse(body.handle)
    record = await _record(store, handle)
    current = {v.index: v for v in record.values}
    replaced = [(current[v.index], v) for v in body.values if v.index in current]
    if replaced and not overwrite:
        raise Refused(RC.VALUE_ALREADY_EXISTS, f"index conflict for {replaced[0][0].index}")
    needed = add_perms(v for v in body.values if v.index not in current) | modify_perms(replaced)
    await _check(store, identity, handle, record.values, needed)
    await _write(store.put_handle(handle.text, _stamp(body.values, now), mode="merge" if replaced else "add",
                                  actor=identity.actor))
    return EmptyResponse()


async def remove_values(store: Store, body: RemoveValueRequest, identity: Identity) -> EmptyResponse:
    handle = parse(body.handle)
    record = await _record(store, handle)
    current = {v.index: v for v in record.values}
    missing = [i for i in body.indexes if i not in current]
    if missing or not body.indexes:
        raise Refused(RC.VALUES_NOT_FOUND, f"no value at index {missing[0]}" if missing else "no indexes given")
    await _check(store, identity, handle, record.values, remove_perms(current[i] for i in body.indexes))
    await _write(store.remove_values(handle.text, body.indexes, actor=identity.actor))
    return EmptyResponse()


async def modify_values(store: Store, body: ModifyValueRequest, identity: Identity, now: int) -> EmptyResponse:
    handle = parse(body.handle)
    record = await _record(store, handle)
    current = {v.index: v for v in record.values}
    pairs = []
    for v in body.values:
        old = current.get(v.index)
        if old is None:
            raise Refused(RC.VALUES_NOT_FOUND, f"no value at index {v.index}")
        if not old.permissions & Perm.ADMIN_WRITE:
            raise Refused(RC.INSUFFICIENT_PERMISSIONS, f"value {v.index} is read-only")
        pairs.append((old, v))
    await _check(store, identity, handle, record.values, modify_perms(pairs))
    await _write(store.put_handle(handle.text, _stamp(body.values, now), mode="merge", actor=identity.actor))
    return EmptyResponse()


def list_prefix(text: str) -> str:
    """The prefix a list-handles request names: ``0.NA/88.118.8`` or ``88.118.8``."""
    na, sep, rest = text.partition("/")
    raw = rest if sep and na.upper() == NA_PREFIX.upper() else (text if not sep else "")
    try:
        return parse_prefix(raw)
    except InvalidHandle:
        raise Refused(RC.INVALID_HANDLE, f"not a prefix handle: {text!r}") from None


async def list_handles(store: Store, body: ListHandlesRequest,
                       identity: Identity) -> AsyncIterator[ListHandlesResponse]:
    """The handles under the prefix, :data:`LIST_BATCH` to a message."""
    prefix = list_prefix(body.handle)
    if await _write(store.get_prefix(prefix)) is None:
        raise Refused(RC.SERVER_NOT_RESPONSIBLE, f"prefix {prefix} is not served by this node")
    if not await allowed(store, identity, prefix, None, AdminPerm.LIST_HANDLES):
        raise Refused(RC.NOT_AN_ADMIN, f"{identity.actor} may not list the handles of {prefix}")
    page = 0
    while True:
        handles = await _write(store.list_handles(prefix, page=page, page_size=LIST_BATCH))
        yield ListHandlesResponse(tuple(handles))
        if len(handles) < LIST_BATCH:
            return
        page += 1
