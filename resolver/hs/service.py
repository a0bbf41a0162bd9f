"""The transport-independent Handle request handler.

Bytes (envelope + message) in, reply bytes out; the TCP, UDP and HTTP
servers are thin adapters around :meth:`HandleService.respond`. Replies are
in the request's protocol version, echo its request and session ids, carry
AT (this node is authoritative for what it holds), the request digest when
RD asked for it, this node's site serial, and expire twelve hours after the
service's clock, which is injectable (tests never use the real one).

Bad input: a message that does not decode is answered RC 4 when its request
id could be read and dropped otherwise; a response sent to the server is
dropped; an expired request (expiration set and in the past) is refused with
RC 2; an opCode this node does not serve gets RC 5.

Authentication (see :mod:`resolver.hs.auth`): administration is always
challenged; a resolution is challenged when it asks for more than public
values (PO clear) and names a session (Handle.Net's own rule), otherwise
non-public values are simply left out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Awaitable, Callable

from protocol.codes import RC
from protocol.handle import (Challenge, ErrorResponse, GetSiteInfoResponse, HandleProtocolError, Limits, Message,
                             OpCode, OpFlag, decode, encode, make_reply, protocol_error_reply)
from protocol.handle.fastpath import (PlainResolution, peek_plain_resolution, plain_datagrams, plain_reply,
                                      udp_parts)
from protocol.handle.message import ECHO_FLAGS
from protocol.identifier import InvalidHandle, handle_key, parse_handle
from registry.errors import RegistryError

from ..node import Node
from ..settings import SettingsError
from . import operations as ops
from .auth import ChallengeBook, Failures, authenticate, new_nonce
from .metrics import HsMetrics
from .permissions import Identity
from .site import site_info

log = logging.getLogger("idnode.hs")

_NOT_FOUND_BODY = ErrorResponse(ops.NOT_FOUND).to_bytes()
_NOT_FOUND_PARTS = udp_parts(_NOT_FOUND_BODY)


def _plain(data: bytes) -> PlainResolution | None:
    """A plain resolution that does not ask for authentication, or None."""
    req = peek_plain_resolution(data)
    if req is None or (req.session_id and not req.op_flags & _PO):
        return None
    return req


_PO = int(OpFlag.PO)

ADMIN_OPS = frozenset({OpCode.CREATE_HANDLE, OpCode.DELETE_HANDLE, OpCode.ADD_VALUE, OpCode.REMOVE_VALUE,
                       OpCode.MODIFY_VALUE, OpCode.LIST_HANDLES})


class HandleService:
    """Answers Handle protocol requests against the node's store."""

    def __init__(self, node: Node, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        settings = node.settings.handle
        if settings.max_message_bytes <= 0:
            raise SettingsError("handle.max_message_bytes must be positive")
        self.settings = node.settings
        self.store = node.store
        self.pipeline = node.pipeline
        self.limits = Limits(max_message_bytes=settings.max_message_bytes)
        self.clock = clock
        self._sleep = sleep
        self.challenges = ChallengeBook(timeout=settings.challenge_timeout, max_pending=settings.max_challenges,
                                        clock=clock)
        self.failures = Failures(node.settings.auth, clock)
        self.metrics = HsMetrics(node.metrics)
        self._resolution = {t: self.metrics.op(t, OpCode.RESOLUTION) for t in ("tcp", "udp", "http")}
        self._serial = settings.site_serial
        self._site: bytes | None = None

    def advertise(self, *, tcp_port: int, udp_port: int, http_port: int) -> None:
        """Build the HS_SITE answer once the servers know their ports."""
        self._site = site_info(self.settings, tcp_port=tcp_port, udp_port=udp_port, http_port=http_port).encode()

    def now(self) -> int:
        return int(self.clock())

    # ------------------------------------------------------------------ entry points

    def fast_answer(self, data: bytes, transport: str) -> bytes | list[bytes] | None:
        """The reply to a plain resolution answered from the cache (over UDP,
        its datagrams), or None: then :meth:`respond` does the whole work.
        Never awaits, logs or encodes values: bodies come encoded from the
        cache entry, UDP ones already cut at the datagram boundaries. Counted
        in ``idnode_requests_total``; not timed (a few microseconds, under the
        duration histogram's first bucket), so the histogram describes the
        requests that need more than the cache."""
        req = _plain(data)
        if req is None:
            return None
        entry = self.pipeline.cached(handle_key(req.handle))
        if entry is None:
            return None
        reply = self._plain_reply(req, entry, transport)
        if reply is not None:
            self._resolution[transport].result(reply[0]).inc()
            return reply[1]
        return None

    def plain(self, data: bytes) -> PlainResolution | None:
        """``data`` read as a plain resolution (no authentication wanted), or None."""
        return _plain(data)

    async def plain_answer(self, req: PlainResolution, transport: str, *,
                           datagrams: bool = False) -> bytes | list[bytes] | None:
        """A plain resolution the cache could not answer: one registry read,
        then the same reply as the fast path (as UDP datagrams when asked);
        None: let the full path answer."""
        start = time.perf_counter()
        try:
            entry = await self.pipeline.resolve(parse_handle(req.handle))
        except (InvalidHandle, RegistryError):
            return None
        reply = self._plain_reply(req, entry, "udp" if datagrams else "tcp")
        if reply is None:
            return None
        self._resolution[transport].observe(reply[0], time.perf_counter() - start)
        return reply[1]

    def _plain_reply(self, req: PlainResolution, entry, transport: str):
        """(code, reply) for a plain resolution from a pipeline entry, or None
        when the answer needs the full path (filters, spelling, expiry)."""
        now = int(self.clock())
        if req.expiration and req.expiration < now:
            return None
        if not entry.found:
            code, parts, body_len = RC.HANDLE_NOT_FOUND, _NOT_FOUND_PARTS, len(_NOT_FOUND_BODY)
        elif entry.has_public and req.handle == entry.handle:
            code, parts, body_len = RC.SUCCESS, entry.hs_parts, entry.hs_body_len
        else:
            return None
        if transport == "udp":
            return code, plain_datagrams(req, code, parts, body_len, now=now, site_serial=self._serial)
        return code, plain_reply(req, code, parts, body_len, now=now, site_serial=self._serial)

    async def respond(self, data: bytes, peer: str, transport: str) -> AsyncIterator[bytes]:
        """The replies to one request (``envelope + message``) from host
        ``peer`` over ``transport`` ("tcp", "udp", "http"): one as a rule,
        several for list handles, none when the input is dropped."""
        plain = _plain(data)
        if plain is not None:
            reply = await self.plain_answer(plain, transport)
            if reply is not None:
                yield reply
                return
        try:
            request = decode(data, self.limits)
        except HandleProtocolError as exc:
            reply = self.malformed(exc, transport)
            if reply is not None:
                yield reply
            return
        async for reply in self.answer(request, peer, transport):
            yield encode(reply)

    def malformed(self, exc: HandleProtocolError, transport: str) -> bytes | None:
        """Count input that did not decode; the RC 4 reply when it has a request id."""
        self.metrics.malformed(transport).inc()
        reply = protocol_error_reply(exc, now=self.now(), message=f"protocol error: {exc}"[:200])
        return encode(reply) if reply is not None else None

    async def answer(self, request: Message, peer: str, transport: str) -> AsyncIterator[Message]:
        if request.is_response:                # never answer an answer (no reflection loops)
            self.metrics.malformed(transport).inc()
            return
        metric = self.metrics.op(transport, int(request.op_code))
        start = time.perf_counter()
        code = None
        try:
            try:
                async for reply in self._dispatch(request, peer, transport):
                    code = reply.response_code if code is None else code
                    yield reply
            except RegistryError as exc:          # the store failed (busy, damaged): say so, keep serving
                code = exc.code if code is None else code
                yield self.error(request, exc.code, str(exc) or type(exc).__name__)
            except Exception:  # noqa: BLE001 - the last line of defence: one reply, never a dead server
                log.exception("internal error", extra={"op": int(request.op_code), "transport": transport})
                code = RC.ERROR if code is None else code
                yield self.error(request, RC.ERROR, "internal error")
        finally:
            metric.observe(code if code is not None else RC.ERROR, time.perf_counter() - start)

    # ------------------------------------------------------------------ replies

    def reply(self, request: Message, body, *, code: int | None = None, op_code: int | None = None,
              more: bool = False) -> Message:
        flags = (int(request.op_flags) & int(ECHO_FLAGS)) | int(OpFlag.AT) | (int(OpFlag.CN) if more else 0)
        return make_reply(request, body, now=self.now(), response_code=code, op_code=op_code,
                          op_flags=OpFlag(flags), site_serial=self._serial)

    def error(self, request: Message, code: int, message: str = "") -> Message:
        return self.reply(request, ErrorResponse(message), code=code)

    def _challenge(self, request: Message, peer: str) -> Message:
        session_id = self.challenges.new_session(peer)
        if session_id is None:
            return self.error(request, RC.SERVER_BUSY, "too many authentications pending; try again later")
        nonce = new_nonce()
        reply = self.reply(request, Challenge(nonce))
        reply = reply.with_(envelope=reply.envelope.with_(session_id=session_id))
        self.challenges.add(session_id, request, nonce, reply.request_digest.digest, peer)
        return reply

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: Message, peer: str, transport: str) -> AsyncIterator[Message]:
        op = request.op_code
        if request.header.expiration and request.expired(self.now()):
            yield self.error(request, RC.ERROR, "request expired (check the client's clock)")
        elif op == OpCode.GET_SITE_INFO:
            yield (self.reply(request, GetSiteInfoResponse(self._site)) if self._site is not None
                   else self.error(request, RC.SERVER_BUSY, "site information not ready"))
        elif op == OpCode.RESOLUTION:
            if OpFlag.PO not in request.op_flags and request.envelope.session_id:
                yield self._challenge(request, peer)
            else:
                yield await self._resolve(request, None)
        elif op in ADMIN_OPS:
            try:
                ops.precheck(request.body)
            except ops.Refused as exc:
                yield self.error(request, exc.code, exc.message)
            else:
                yield self._challenge(request, peer)
        elif op == OpCode.CHALLENGE_RESPONSE:
            async for reply in self._answer(request, peer, transport):
                yield reply
        else:
            yield self.error(request, RC.OPERATION_NOT_SUPPORTED, f"opCode {int(op)} is not supported here")

    async def _resolve(self, request: Message, identity: Identity | None) -> Message:
        try:
            body = await ops.resolve(self.pipeline, self.store, request.body, identity)
            return self.reply(request, body, code=RC.SUCCESS)
        except ops.Refused as exc:
            return self.error(request, exc.code, exc.message)

    async def _answer(self, answer: Message, peer: str, transport: str) -> AsyncIterator[Message]:
        """An answer to a challenge: check it, then run the challenged request
        as the proven identity (replies carry the answer's request id)."""
        pending = self.challenges.take(answer.envelope.session_id, peer)
        if pending is None:
            yield self.error(answer, RC.AUTHENTICATION_TIMEOUT, "no pending challenge for this session")
            return
        original = pending.request

        def fix(reply: Message) -> Message:
            return reply.with_(envelope=reply.envelope.with_(request_id=answer.request_id))

        if self.failures.locked(peer):
            self.metrics.auth_failure(transport).inc()
            yield fix(self.error(original, RC.AUTHENTICATION_FAILED, "too many failed authentications; try later"))
            return
        identity = await authenticate(self.store, pending, answer.body)
        if identity is None:
            self.metrics.auth_failure(transport).inc()
            await self._sleep(self.failures.record(peer))
            yield fix(self.error(original, RC.AUTHENTICATION_FAILED, "authentication failed"))
            return
        self.failures.clear(peer)
        async for reply in self._run(original, identity):
            yield fix(reply)

    async def _run(self, request: Message, identity: Identity) -> AsyncIterator[Message]:
        """The challenged request, as ``identity``."""
        op, body, now = request.op_code, request.body, self.now()
        flags = request.op_flags
        try:
            if op == OpCode.RESOLUTION:
                yield await self._resolve(request, identity)
            elif op == OpCode.LIST_HANDLES:
                previous = None
                async for batch in ops.list_handles(self.store, body, identity):
                    if previous is not None:
                        yield self.reply(request, previous, more=True)
                    previous = batch
                yield self.reply(request, previous)
            elif op == OpCode.CREATE_HANDLE:
                yield self.reply(request, await ops.create(self.store, body, identity, now,
                                                           mint=OpFlag.MINT in flags))
            elif op == OpCode.DELETE_HANDLE:
                yield self.reply(request, await ops.delete(self.store, body, identity))
            elif op == OpCode.ADD_VALUE:
                yield self.reply(request, await ops.add_values(self.store, body, identity, now,
                                                               overwrite=OpFlag.OVRW in flags))
            elif op == OpCode.REMOVE_VALUE:
                yield self.reply(request, await ops.remove_values(self.store, body, identity))
            elif op == OpCode.MODIFY_VALUE:
                yield self.reply(request, await ops.modify_values(self.store, body, identity, now))
        except ops.Refused as exc:
            yield self.error(request, exc.code, exc.message)
