"""Handle protocol administration requests, run through the operations layer.

Only the protocol's own parts are here: which request body maps to which
operation, the checks Handle.Net makes *before* it challenges (so a
malformed request is refused without asking for credentials), slashless
handles (``88.118.8`` means ``0.NA/88.118.8``), and list-handles answers
streamed :data:`LIST_BATCH` handles to a message. Permissions, values and
the registry are the core's (:mod:`resolver.core`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator

from protocol.codes import RC
from protocol.handle import (AddValueRequest, CreateHandleRequest, CreateHandleResponse, DeleteHandleRequest,
                             EmptyResponse, ListHandlesRequest, ListHandlesResponse, Message, ModifyValueRequest,
                             OpFlag, RemoveValueRequest)
from protocol.identifier import Handle, InvalidHandle, parse_handle

from ..core.caller import NA_PREFIX, Caller
from ..core.errors import Refused
from ..core.writes import check_new_values

if TYPE_CHECKING:
    from .service import HandleService

LIST_BATCH = 500        # handles per list-handles message (<= 130 KB each)


def parse(text: str) -> Handle:
    """A request's handle; slashless means the prefix handle ``0.NA/<text>``."""
    if "/" not in text:
        text = f"{NA_PREFIX}/{text}"
    try:
        return parse_handle(text)
    except InvalidHandle as exc:
        raise Refused(RC.INVALID_HANDLE, str(exc)) from None


def list_prefix(text: str) -> str:
    """The prefix a list-handles request names: ``0.NA/88.118.8`` or ``88.118.8``."""
    na, sep, rest = text.partition("/")
    return rest if sep and na.upper() == NA_PREFIX.upper() else (text if not sep else "")


def precheck(body) -> None:
    """What is refused before challenging (Handle.Net does the same)."""
    if isinstance(body, ListHandlesRequest):
        if not list_prefix(body.handle):
            raise Refused(RC.INVALID_HANDLE, f"not a prefix handle: {body.handle!r}")
        return
    parse(body.handle)
    if isinstance(body, (CreateHandleRequest, AddValueRequest, ModifyValueRequest)):
        if not body.values and not isinstance(body, CreateHandleRequest):
            raise Refused(RC.INVALID_VALUE, "value list was empty")
        check_new_values(body.values)


async def run(service: "HandleService", request: Message, caller: Caller) -> AsyncIterator[Message]:
    """The challenged administration request, as ``caller``."""
    core, body, flags = service.core, request.body, request.op_flags
    try:
        if isinstance(body, ListHandlesRequest):
            previous, cursor = None, None
            while True:
                page = await core.list_handles(caller, list_prefix(body.handle), cursor=cursor, limit=LIST_BATCH)
                if previous is not None:
                    yield service.reply(request, previous, more=True)
                previous = ListHandlesResponse(page.items)
                if page.next is None:
                    break
                cursor = page.next
            yield service.reply(request, previous)
            return
        handle = parse(body.handle)
        if isinstance(body, CreateHandleRequest):
            mint = OpFlag.MINT in flags
            record, _ = await core.put(caller, handle, body.values, overwrite=OpFlag.OVRW in flags, mint=mint)
            yield service.reply(request, CreateHandleResponse(record.handle if mint else None))
        elif isinstance(body, DeleteHandleRequest):
            await core.delete(caller, handle)
            yield service.reply(request, EmptyResponse())
        elif isinstance(body, AddValueRequest):
            await core.add_values(caller, handle, body.values, overwrite=OpFlag.OVRW in flags)
            yield service.reply(request, EmptyResponse())
        elif isinstance(body, RemoveValueRequest):
            await core.remove_values(caller, handle, body.indexes)
            yield service.reply(request, EmptyResponse())
        elif isinstance(body, ModifyValueRequest):
            await core.modify_values(caller, handle, body.values)
            yield service.reply(request, EmptyResponse())
        else:
            yield service.error(request, RC.OPERATION_NOT_SUPPORTED, f"opCode {int(request.op_code)} is not supported")
    except Refused as exc:
        yield service.error(request, exc.code, exc.message)
