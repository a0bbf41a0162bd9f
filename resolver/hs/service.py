"""The Handle protocol service: bytes in, replies out, for every transport.

The TCP, UDP and HTTP servers move bytes and call :meth:`HandleService.handle`
with one whole request (``envelope + message``), the peer and the transport.
The service answers in three tiers, with one pipeline lookup per request:

1. **fast**: a plain resolution (``protocol.handle.fastpath``: one packet,
   no filters, no credential, nothing that asks for authentication) the
   cache can answer: the reply is written from the entry's memoised Handle
   rendering without awaiting or building objects; returned at once;
2. **plain**: the same request when the cache cannot answer: one pipeline
   read, then the same reply;
3. **full**: everything else is decoded and dispatched: site info,
   resolution with filters or authentication, administration with
   challenge-response (:mod:`.admin`), sessions and IDIS logins
   (:mod:`.sessionops`, :mod:`.sessions`), each through the operations
   layer. A request that sets CT gets its reply signed: with the server key
   (:mod:`resolver.serverkey`), or in a session with the session key; a
   message encrypted in a session is decrypted first and answered encrypted.

Who a request comes from, when no challenge asks: the identity logged in on
its TCP connection (``link``), or its session's, once the session's checks
pass (the address that set it up, a right MAC, a counter not seen before).

``handle`` returns the reply bytes (UDP: the list of datagrams) for the fast
tier; for the plain tier, a callable that reads and returns them when the
pipeline reads inline (the embedded store: the transport calls it when it
chooses, with no task), else a coroutine of them; and an async iterator of
replies for the full tier (several for list handles, none when the input is
dropped). Replies are in the request's protocol version, echo
its request and session ids, carry AT, the request digest when RD asked,
this node's site serial, and expire twelve hours after the service's clock
(injectable; tests never use the real one).

Bad input: a message that does not decode is answered RC 4 when its request
id could be read and dropped otherwise; a response sent to the server is
dropped; an expired request is refused with RC 2; an opCode this node does
not serve gets RC 5. Administration is challenged unless a session or a
login already proved the caller, and served over TCP and HTTP only: over
UDP, which Handle clients use for queries alone (this node's HS_SITE says
so) and whose source address anyone may claim, it is refused with RC 2, on
which a Handle client asks over TCP. A resolution is challenged when it asks
for more than public values (PO clear) and names a session (Handle.Net's
rule), otherwise non-public values are left out. Public-key work
(signatures, key exchanges) is budgeted per source prefix by the operations
layer (:class:`resolver.core.throttle.WorkBudget`): past it, RC 3 without
the work. Over UDP no answer is larger than ``handle.max_udp_reply_bytes``:
a larger one is refused with RC 2 the same way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial
from typing import AsyncIterator, Callable, Coroutine

from cryptography.hazmat.primitives.asymmetric import rsa

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, Challenge, EmptyResponse, EnvFlag, ErrorResponse, GetSiteInfoResponse,
                             HandleProtocolError, Limits, Message, OpCode, OpFlag, ReferralResponse, ResolutionResponse,
                             Version, decode, encode, make_reply, protocol_error_reply, split_datagrams)
from protocol.handle.fastpath import (HEADER, UDP_PAYLOAD, PlainResolution, peek_plain_resolution, plain_datagrams,
                                      plain_reply, udp_parts)
from protocol.handle.message import ECHO_FLAGS, reply_version
from protocol.handle.sessioncrypto import public_key_bytes
from protocol.identifier import handle_key
from registry.errors import StoreUnavailable

from ..cache import NOT_HERE, REFERRED, Entry
from ..core import Core, View
from ..core.reads import public_ready, public_view
from ..core.throttle import KEY_EXCHANGE, SIGNATURE
from ..core.caller import Caller, anonymous
from ..core.errors import Refused
from ..query import Query
from ..settings import Settings, SettingsError
from . import admin, sessionops
from .auth import ChallengeBook, new_nonce
from .authdir import AuthDir
from .metrics import HsMetrics
from .sessionops import Link
from .sessions import Session, SessionBook

log = logging.getLogger("idnode.hs")

_PO = int(OpFlag.PO)
_REC = int(OpFlag.REC)
_OTHER_NODES = (REFERRED, NOT_HERE)
_SUCCESS = int(RC.SUCCESS)
_ERROR = int(RC.ERROR)             # what Handle.Net clients retry over their next interface (TCP)
_ENCRYPTED = int(EnvFlag.ENCRYPTED)
_HS = "hs"                      # the service's key in an entry's memo
# The refusals of UDP requests: short, so that a refusal is no larger than a request.
TOO_LARGE_FOR_UDP = "too large for UDP; use TCP"          # past handle.max_udp_reply_bytes
RATE_LIMITED = "rate limited; use TCP"                    # a slip (resolver.core.throttle)

ADMIN_OPS = frozenset({OpCode.CREATE_HANDLE, OpCode.DELETE_HANDLE, OpCode.ADD_VALUE, OpCode.REMOVE_VALUE,
                       OpCode.MODIFY_VALUE, OpCode.LIST_HANDLES})


def rendering(view: View) -> tuple[int, tuple[bytes, ...], int]:
    """A view as the fast tier keeps it: (code, the answer body cut where UDP
    datagrams cut it, the body's length)."""
    if view.code == _SUCCESS:
        body = ResolutionResponse(view.handle, view.values).to_bytes()
    elif view.code == RC.SERVICE_REFERRAL:
        body = ReferralResponse(view.referral, view.values).to_bytes()
    else:
        body = ErrorResponse(view.message).to_bytes()
    return view.code, udp_parts(body), len(body)


def udp_reply_bytes(body_len: int) -> int:
    """What the plain reply of an answer body of ``body_len`` bytes puts on the
    wire over UDP: header, body, credential length, an envelope per datagram
    (the datagrams as :func:`udp_parts` cuts them)."""
    rest = body_len + 4
    datagrams = 1 if rest <= UDP_PAYLOAD - HEADER else 1 - (UDP_PAYLOAD - HEADER - rest) // UDP_PAYLOAD
    return HEADER + rest + ENVELOPE_SIZE * datagrams


def _largest_body(cap: int) -> int:
    """The longest answer body whose plain UDP reply fits ``cap`` bytes (0 if none)."""
    low, high = 0, cap            # udp_reply_bytes grows with the body: bisect
    while low < high:
        mid = (low + high + 1) // 2
        if udp_reply_bytes(mid) <= cap:
            low = mid
        else:
            high = mid - 1
    return low


def spliced(handle: str, ready: bytes) -> tuple[int, tuple[bytes, ...], int]:
    """:func:`rendering` of a found identifier's public view from its values
    as the registry keeps them ready (:func:`resolver.core.reads.public_ready`)."""
    body = ResolutionResponse.splice(handle, ready)
    return _SUCCESS, udp_parts(body), len(body)


def memoised(cache, entry: Entry) -> tuple[int, tuple[bytes, ...], int]:
    """The entry's Handle answer to an anonymous, unfiltered request naming it
    as registered, made once and kept in its memo (charged to ``cache``): from
    the registry's reply-ready values when it has them, no decoding."""
    memo = entry.memo
    found = memo.get(_HS) if memo is not None else None
    if found is None:
        ready = public_ready(entry)
        found = spliced(entry.handle, ready) if ready is not None else rendering(public_view(entry, entry.handle or ""))
        if cache is not None:
            cache.remember(entry, _HS, found, 2 * found[2] + 200)
        else:
            entry.memo = {_HS: found}
    return found


class HandleService:
    """Answers Handle protocol requests through the operations layer."""

    def __init__(self, settings: Settings, core: Core, metrics, *, server_key: rsa.RSAPrivateKey, auth_dir: AuthDir,
                 clock: Callable[[], float] = time.time):
        hs = settings.handle
        if hs.max_message_bytes <= 0:
            raise SettingsError("handle.max_message_bytes must be positive")
        self.settings = settings
        self.core = core
        self.pipeline = core.pipeline
        self._cached = core.pipeline.cached
        self._cache = core.pipeline.cache
        self._reads_inline = core.pipeline.reads_inline
        # Whether REC requests for other nodes' identifiers go to the full tier (the core may recurse for them).
        self._recurses = core.recursion is not None and core.recursion.on
        self.limits = Limits(max_message_bytes=hs.max_message_bytes)
        self._max_bytes = 20 + hs.max_message_bytes        # the full path refuses anything longer
        self.clock = clock
        self.metrics = HsMetrics(metrics)
        self.challenges = ChallengeBook(auth_dir, timeout=hs.challenge_timeout, max_pending=hs.max_challenges,
                                        clock=clock, per_source=hs.challenges_per_source, metrics=self.metrics,
                                        limits=self.limits)
        self.sessions = SessionBook(auth_dir, max_sessions=hs.max_sessions, per_source=hs.sessions_per_source,
                                    max_timeout=hs.session_timeout, clock=clock, metrics=self.metrics)
        self.server_key = server_key
        self.server_public_key = public_key_bytes(server_key.public_key())
        self._resolution = {t: self.metrics.op(t, OpCode.RESOLUTION) for t in ("tcp", "udp", "http")}
        self._serial = hs.site_serial
        self._site: bytes | None = None
        self._udp_cap = hs.max_udp_reply_bytes        # bytes of all the datagrams of one UDP reply
        self._udp_body_max = _largest_body(self._udp_cap)   # the fast tier's check of the same

    def advertise(self, site: bytes) -> None:
        """The encoded HS_SITE that get site info answers (once the ports are known)."""
        self._site = site

    def now(self) -> int:
        return int(self.clock())

    # ------------------------------------------------------------------ the entry point

    def handle(self, data: bytes, peer: str, transport: str,
               link: Link | None = None) -> "bytes | list[bytes] | Coroutine | AsyncIterator[bytes | list[bytes]]":
        """The replies to one request (see the module docstring); ``link`` is
        the TCP connection's, which an IDIS login binds to an identity."""
        req = peek_plain_resolution(data)
        if req is None or (req.session_id and not req.op_flags & _PO) or len(data) > self._max_bytes:
            return self.full(data, peer, transport, link)
        now = int(self.clock())
        if req.expiration and req.expiration < now:
            return self.full(data, peer, transport, link)
        entry = self._cached(handle_key(req.handle))
        if entry is None:
            if self._recurses and req.op_flags & _REC:       # the answer may be another node's
                return self._plain_miss(req, transport, (data, peer, link))
            if self._reads_inline:
                return partial(self._plain_miss_now, req, transport)
            return self._plain_miss(req, transport)
        if self._recurses and entry.status in _OTHER_NODES and req.op_flags & _REC:
            return self.full(data, peer, transport, link)
        code, reply = self._plain_reply(req, entry, transport, now)
        self._resolution[transport].count(code)
        return reply

    def _plain_reply(self, req: PlainResolution, entry: Entry, transport: str,
                     now: int) -> tuple[int, "bytes | list[bytes]"]:
        code, parts, body_len = memoised(self._cache, entry)
        if code == _SUCCESS and req.handle != entry.handle:
            # Another spelling (case, NFC, slashless): the answer names the handle as asked.
            body = ResolutionResponse(req.handle, self.core.public_view(entry, req.handle).values).to_bytes()
            parts, body_len = udp_parts(body), len(body)
        if transport == "udp":
            if body_len > self._udp_body_max:
                return _ERROR, self._plain_error(req, _ERROR, TOO_LARGE_FOR_UDP, transport)
            return code, plain_datagrams(req, code, parts, body_len, now=now, site_serial=self._serial)
        return code, plain_reply(req, code, parts, body_len, now=now, site_serial=self._serial)

    def slip(self, data: bytes) -> bytes | None:
        """The small refusal (RC 2, "ask over TCP") a rate-limited UDP request
        may get instead of its answer; None when the request is not a plain
        resolution (it is dropped). One datagram, about the request's size."""
        req = peek_plain_resolution(data)
        if req is None:
            return None
        (datagram,) = self._plain_error(req, _ERROR, RATE_LIMITED, "udp")
        return datagram

    def _plain_error(self, req: PlainResolution, code: int, message: str, transport: str) -> "bytes | list[bytes]":
        body = ErrorResponse(message[:500]).to_bytes()
        now = int(self.clock())
        make = plain_datagrams if transport == "udp" else plain_reply
        return make(req, code, udp_parts(body), len(body), now=now, site_serial=self._serial)

    def _plain_miss_now(self, req: PlainResolution, transport: str) -> "bytes | list[bytes]":
        """A plain resolution the cache could not answer, on a pipeline that
        reads inline: one read, no task (anonymous)."""
        start = time.perf_counter()
        try:
            entry = self.core.entry_now(Query(admin.parse(req.handle)))
        except Refused as exc:
            return self._missed(req, transport, start, refused=exc)
        return self._missed(req, transport, start, entry)

    async def _plain_miss(self, req: PlainResolution, transport: str,
                          full: tuple[bytes, str, Link | None] | None = None) -> "bytes | list[bytes]":
        """A plain resolution the cache could not answer: one pipeline read
        (anonymous). ``full``: the request (data, peer, link), handed to the
        full tier when the identifier turns out to be another node's (the
        operations layer decides whether the client may have it resolved there)."""
        start = time.perf_counter()
        try:
            entry = await self.core.entry(Query(admin.parse(req.handle)))
        except Refused as exc:
            return self._missed(req, transport, start, refused=exc)
        if full is not None and entry.status in _OTHER_NODES:
            replies = self.full(full[0], full[1], transport, full[2])
            try:
                async for reply in replies:          # a resolution has one reply
                    return reply
            finally:
                await replies.aclose()
        return self._missed(req, transport, start, entry)

    def _missed(self, req: PlainResolution, transport: str, start: float, entry: Entry | None = None,
                refused: Refused | None = None) -> "bytes | list[bytes]":
        if refused is not None:
            code, reply = refused.code, self._plain_error(req, refused.code, refused.message, transport)
        else:
            code, reply = self._plain_reply(req, entry, transport, int(self.clock()))
        self._resolution[transport].observe(code, time.perf_counter() - start)
        return reply

    async def full(self, data: bytes, peer: str, transport: str,
                   link: Link | None = None) -> AsyncIterator["bytes | list[bytes]"]:
        """The full tier alone: decode (a message encrypted in a session:
        decrypted first), dispatch, encode (encrypted when the request was;
        UDP: cut into datagrams)."""
        sealed = None
        try:
            if len(data) > 2 and data[2] & _ENCRYPTED:
                data, sealed = sessionops.unseal(self, data, peer)
            request = decode(data, self.limits)
        except HandleProtocolError as exc:
            reply = self.malformed(exc, transport)
            if reply is not None:
                yield split_datagrams(reply) if transport == "udp" else reply
            return
        async for reply in self.answer(request, peer, transport, link):
            wire = encode(reply) if sealed is None else sessionops.seal(reply, sealed)
            if transport != "udp":
                yield wire
                continue
            datagrams = split_datagrams(wire)
            if sum(map(len, datagrams)) > self._udp_cap:      # never amplify over UDP: the client asks again over TCP
                error = self.error(request, _ERROR, TOO_LARGE_FOR_UDP)
                datagrams = split_datagrams(encode(error.with_(envelope=error.envelope.with_(
                    request_id=reply.request_id, session_id=reply.envelope.session_id))))
            yield datagrams

    def malformed(self, exc: HandleProtocolError, transport: str) -> bytes | None:
        """Count input that did not decode; the RC 4 reply when it has a request id."""
        self.metrics.malformed(transport).inc()
        reply = protocol_error_reply(exc, now=self.now(), message=f"protocol error: {exc}"[:200])
        return encode(reply) if reply is not None else None

    def dropped(self, transport: str, reason: str, count: int = 1) -> None:
        """Count requests a transport dropped without answering (no room, incomplete, shed, rate-limited)."""
        self.metrics.dropped(transport, reason).inc(count)

    async def answer(self, request: Message, peer: str, transport: str,
                     link: Link | None = None) -> AsyncIterator[Message]:
        if request.is_response:                # never answer an answer (no reflection loops)
            self.metrics.malformed(transport).inc()
            return
        metric = self.metrics.op(transport, int(request.op_code))
        start = time.perf_counter()
        code = None
        certify = OpFlag.CT in request.op_flags
        cost = (SIGNATURE if certify else 0.0) + (KEY_EXCHANGE if request.op_code == OpCode.SESSION_SETUP else 0.0)
        if cost and not self.core.may_work(peer, cost):
            self.metrics.overworked.inc()
            metric.observe(RC.SERVER_BUSY, time.perf_counter() - start)
            yield self.error(request, RC.SERVER_BUSY, "too many signed replies or sessions from your network; "
                                                      "slow down")
            return
        try:
            try:
                async for reply in self._dispatch(request, peer, transport, link):
                    code = reply.response_code if code is None else code
                    yield sessionops.certified(self, request, reply, peer) if certify else reply
            except StoreUnavailable as exc:   # the registry is away, wherever the request met it: RC 3
                log.warning("store unavailable", extra={"op": int(request.op_code), "error": str(exc)})
                code = RC.SERVER_BUSY if code is None else code
                error = self.error(request, RC.SERVER_BUSY, str(exc))
                yield sessionops.certified(self, request, error, peer) if certify else error
            except Exception:  # noqa: BLE001 - the last line of defence: one reply, never a dead server
                log.exception("internal error", extra={"op": int(request.op_code), "transport": transport})
                code = RC.ERROR if code is None else code
                error = self.error(request, RC.ERROR, "internal error")
                yield sessionops.certified(self, request, error, peer) if certify else error
        finally:
            metric.observe(code if code is not None else RC.ERROR, time.perf_counter() - start)

    # ------------------------------------------------------------------ replies

    @staticmethod
    def version_for(request: Message) -> Version:
        """The version a reply is in: the request's, but for a certified request
        the client's suggested one when higher (as Handle.Net 9's server
        answers): the signed bytes then carry the versions and ids (2.8 on),
        the one layout that Handle.Net's clients and the CAICT SDK (which
        always expects it) both check."""
        version = reply_version(request.version)
        if OpFlag.CT in request.op_flags:
            return max(version, reply_version(request.envelope.suggested_version))
        return version

    def reply(self, request: Message, body, *, code: int | None = None, more: bool = False,
              authoritative: bool = True) -> Message:
        """``authoritative=False``: another node's answer, resolved for the client (AT cleared)."""
        flags = (int(request.op_flags) & int(ECHO_FLAGS) & ~int(OpFlag.AT)) | \
            (int(OpFlag.AT) if authoritative else 0) | (int(OpFlag.CN) if more else 0)
        return make_reply(request, body, now=self.now(), response_code=code, op_flags=OpFlag(flags),
                          site_serial=self._serial, version=self.version_for(request))

    def error(self, request: Message, code: int, message: str = "") -> Message:
        return self.reply(request, ErrorResponse(message[:500]), code=code)

    def _challenge(self, request: Message, peer: str, transport: str, session: Session | None = None) -> Message:
        """RC 402 with a nonce; inside a session under the session's id (the
        answer then authenticates the session), else under a fresh one."""
        session_id = session.id if session is not None else self.challenges.new_session()
        nonce = new_nonce()
        reply = self.reply(request, Challenge(nonce))
        reply = reply.with_(envelope=reply.envelope.with_(session_id=session_id))
        self.challenges.add(session_id, request, nonce, reply.request_digest.digest, peer, udp=transport == "udp")
        return reply

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: Message, peer: str, transport: str,
                        link: Link | None) -> AsyncIterator[Message]:
        op = request.op_code
        if request.header.expiration and request.expired(self.now()):
            yield self.error(request, RC.ERROR, "request expired (check the client's clock)")
        elif op == OpCode.GET_SITE_INFO:
            yield (self.reply(request, GetSiteInfoResponse(self._site)) if self._site is not None
                   else self.error(request, RC.SERVER_BUSY, "site information not ready"))
        elif op == OpCode.CHALLENGE_RESPONSE:
            async for reply in self._answer(request, peer, transport, link):
                yield reply
        elif op == OpCode.SESSION_SETUP:
            yield await sessionops.setup(self, request, peer, transport)
        elif op == OpCode.SESSION_EXCHANGE_KEY:
            try:
                yield await sessionops.exchange_key(self, request, peer, transport)
            except Refused as exc:
                yield self.error(request, exc.code, exc.message)
        elif op == OpCode.LOGIN_PASSWORD:
            yield await sessionops.password_login(self, request, peer, transport, link)
        elif op == OpCode.LOGIN_KEY:
            if link is None:
                yield self.error(request, RC.ERROR, "a login holds for one TCP connection; log in over TCP")
            else:
                yield self._challenge(request, peer, transport)
        else:
            try:
                caller, session = await sessionops.caller_of(self, request, peer, transport, link)
            except Refused as exc:
                yield self.error(request, exc.code, exc.message)
                return
            async for reply in self._serve(request, peer, transport, caller, session):
                yield reply

    async def _serve(self, request: Message, peer: str, transport: str, caller: Caller | None,
                     session: Session | None) -> AsyncIterator[Message]:
        """A request whose caller is known (a session or login proved it) or not yet."""
        op = request.op_code
        if op == OpCode.RESOLUTION:
            if caller is not None:
                yield await self._resolve(request, caller)
            elif OpFlag.PO not in request.op_flags and request.envelope.session_id:
                yield self._challenge(request, peer, transport, session)
            else:
                yield await self._resolve(request, anonymous(peer))
        elif op == OpCode.SESSION_TERMINATE:
            yield (sessionops.terminate(self, request) if session is not None else
                   self.error(request, RC.SESSION_TIMEOUT, "no such session (expired, or ended already)"))
        elif op in ADMIN_OPS and transport == "udp":     # Handle clients administer over TCP: HS_SITE
            yield self.error(request, _ERROR, "administration is not served over UDP; send it over TCP")
        elif op in ADMIN_OPS:
            try:
                admin.precheck(request.body)
            except Refused as exc:
                yield self.error(request, exc.code, exc.message)
                return
            if caller is None:
                yield self._challenge(request, peer, transport, session)
                return
            async for reply in admin.run(self, request, caller):
                yield reply
        else:
            yield self.error(request, RC.OPERATION_NOT_SUPPORTED, f"opCode {int(op)} is not supported here")

    async def _resolve(self, request: Message, caller: Caller) -> Message:
        body = request.body
        try:
            query = Query(admin.parse(body.handle), tuple(body.indexes), tuple(body.types), caller,
                          recursion=OpFlag.REC in request.op_flags, hops=request.header.recursion_count)
            view = await self.core.resolve(query)
        except Refused as exc:
            return self.error(request, exc.code, exc.message)
        if view.code == RC.SERVICE_REFERRAL:
            return self.reply(request, ReferralResponse(view.referral, view.values), code=RC.SERVICE_REFERRAL)
        if view.code != RC.SUCCESS:
            return self.reply(request, ErrorResponse(view.message[:500]), code=view.code,
                              authoritative=view.authoritative)
        return self.reply(request, ResolutionResponse(body.handle, view.values), code=RC.SUCCESS,
                          authoritative=view.authoritative)

    async def _answer(self, answer: Message, peer: str, transport: str,
                      link: Link | None) -> AsyncIterator[Message]:
        """An answer to a challenge: check it, then run the challenged request
        as the proven identity (replies carry the answer's request id). The
        answer to a session's challenge authenticates the session; to a
        login's, the connection."""
        session_id = answer.envelope.session_id
        pending = self.challenges.take(session_id, peer)
        if pending is None:
            yield self.error(answer, RC.AUTHENTICATION_TIMEOUT, "no pending challenge for this session")
            return
        original = pending.request

        def fix(reply: Message) -> Message:
            return reply.with_(envelope=reply.envelope.with_(request_id=answer.request_id))

        protocol = f"hs-{transport}"
        try:
            caller = await self.core.auth.answer(pending.nonce, pending.digest, answer.body, peer, protocol)
            proven = (caller.identity.handle, caller.identity.index)
            session = self.sessions.get(session_id)
            named = sessionops.login_identity(original) if original.op_code == OpCode.LOGIN_KEY else \
                (session.identity if session is not None else None)
            if named is not None and not sessionops.same_identity(named, proven):
                raise await self.core.auth.failed(peer, protocol, f"answered as {proven[1]}:{proven[0]}, "
                                                                  f"not as {named[1]}:{named[0]}")
        except Refused as exc:
            yield fix(self.error(original, exc.code, exc.message))
            return
        if session is not None and session.peer == peer:
            self.sessions.update(session_id, lambda s: replace(s, caller=proven))
        if original.op_code == OpCode.LOGIN_KEY:
            if link is None:
                yield fix(self.error(original, RC.ERROR, "a login holds for one TCP connection; log in over TCP"))
            else:
                sessionops.bind(self, link, caller)
                yield fix(self.reply(original, EmptyResponse()))
        elif original.op_code == OpCode.RESOLUTION:
            yield fix(await self._resolve(original, caller))
        else:
            async for reply in admin.run(self, original, caller):
                yield fix(reply)
