"""Sessions and logins on the wire: opCodes 400, 401, 402, 2000 and 2001.

The protocol's parts only: the key exchanges of a session setup (Handle.Net
``HandleServer.processSessionSetup`` as its client expects it), ending a
session, the IDIS login that the CAICT and IDPointer SDKs send before any
change, the :class:`Link` that holds a TCP connection's login; and for
every other request, who it comes from without a new challenge
(:func:`caller_of`: the login, or the session after its checks), its
reply signed when CT asks (:func:`certified`), and a session's encrypted
messages opened and answered encrypted (:func:`unseal`, :func:`seal`). Who may
do what stays the operations layer's: a session or a login only says *who*
the caller is (:meth:`resolver.core.auth.Authenticator.resume`), once a
challenge answer proved it (:mod:`resolver.core.auth`).

* **Session setup** (400, over TCP and HTTP): Diffie-Hellman in the client's
  group (AES session key), or a fresh AES key encrypted to the client's RSA
  key (sent, or named as a handle value), or the server's public key for the
  client to encrypt its key to (then 402). The reply is signed with the
  server key, which the client checks against HS_SITE.
* **Login** (TCP only): 2001 (key login) is answered with a challenge like
  any administration request; once answered (opCode 200) by the identity
  the login named, the connection is logged in as it. 2000 (password login,
  the CAICT SDK's) carries the secret itself, checked at once as HTTP Basic
  is. Either holds until the connection closes or ``handle.login_timeout``
  passes, and for nothing else: not another connection, not a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.codes import RC
from protocol.handle import (EmptyResponse, Envelope, HandleProtocolError, Message, OpCode, ResolutionResponse,
                             encode)
from protocol.handle.credential import MAC
from protocol.handle.session import KeyExchange, SessionCipher, SessionSetupResponse
from protocol.handle.sessioncrypto import (decrypt_wire, dh_server_exchange, encrypt_wire, mac_credential,
                                           new_session_key, pack_session_key, rsa_decrypt_session_key,
                                           rsa_encrypt_session_key, sign, unpack_session_key, verify_mac)
from protocol.identifier import InvalidHandle, parse_handle
from protocol.valuetypes import has_type

from ..core.auth import parse_identity
from ..core.caller import Caller, anonymous
from ..core.errors import Refused
from ..query import Query
from .sessions import Session

if TYPE_CHECKING:
    from .service import HandleService

PASSWORD_LOGIN_INDEX = 300       # whose secret a password login naming a bare handle means: its admin's


class Link:
    """A TCP connection as the Handle service sees it: who logged in on it."""

    __slots__ = ("identity", "until")

    def __init__(self) -> None:
        self.identity: tuple[str, int] | None = None
        self.until = 0.0

    def current(self, now: float) -> tuple[str, int] | None:
        """The identity logged in on this connection, if the login still holds."""
        return self.identity if self.identity is not None and now < self.until else None


async def _exchange_key(service: "HandleService", body, version) -> bytes:
    """The RSA public key a CIPHER_HDL setup names: an HS_PUBKEY value of a handle, read as anyone may."""
    try:
        handle = parse_handle(body.exchange_key_handle)
    except InvalidHandle as exc:
        raise Refused(RC.INVALID_HANDLE, str(exc)) from None
    view = await service.core.resolve(Query(handle, (body.exchange_key_index,), (), anonymous("")))
    for value in view.values if view.code == RC.SUCCESS else ():
        if has_type(value.type, "HS_PUBKEY"):
            return value.data
    raise Refused(RC.INVALID_SESSION_SETUP_REQUEST,
                  f"no public key at {body.exchange_key_index}:{body.exchange_key_handle}")


async def setup(service: "HandleService", request: Message, peer: str, transport: str) -> Message:
    """Answer a session setup request (opCode 400)."""
    body, version = request.body, service.version_for(request)      # the reply's: what the client reads by
    if transport == "udp":
        return service.error(request, RC.ERROR, "sessions are not set up over UDP; send it over TCP")
    cipher = SessionCipher.AES
    key = b""
    try:
        if body.mode == KeyExchange.DH:
            data, key = dh_server_exchange(body.public_key, SessionCipher.AES, version)
        elif body.mode in (KeyExchange.CIPHER_CLIENT, KeyExchange.CIPHER_HDL):
            client_key = body.public_key if body.mode == KeyExchange.CIPHER_CLIENT else \
                await _exchange_key(service, body, version)
            key = new_session_key(cipher)
            data = rsa_encrypt_session_key(client_key, pack_session_key(cipher, key, version), version)
        elif body.mode == KeyExchange.CIPHER_SERVER:
            data = service.server_public_key            # the client encrypts its key to it (opCode 402)
        else:
            return service.error(request, RC.PROTOCOL_ERROR, f"unknown key exchange mode {body.mode}")
    except HandleProtocolError as exc:
        return service.error(request, RC.PROTOCOL_ERROR, f"session setup: {exc}"[:200])
    except Refused as exc:
        return service.error(request, exc.code, exc.message)
    identity = (body.identity_handle, body.identity_index) if body.identity_handle else None
    session = service.sessions.open(peer, timeout=body.timeout, cipher=int(cipher), version=tuple(version), key=key,
                                    identity=identity)
    reply = service.reply(request, SessionSetupResponse(int(body.mode), data))
    return reply.with_(envelope=reply.envelope.with_(session_id=session.id))


async def exchange_key(service: "HandleService", request: Message, peer: str, transport: str) -> Message:
    """The session key a client encrypted to the server key (opCode 402, after a CIPHER_SERVER setup)."""
    session_id = request.envelope.session_id
    session = service.sessions.get(session_id) if session_id else None
    if session is None or session.peer != peer or session.keyed:      # nothing proven wrong: not a failure
        raise Refused(RC.SESSION_TIMEOUT, "no session of yours is waiting for a key; set up a new one")
    try:
        cipher, key = unpack_session_key(
            rsa_decrypt_session_key(service.server_key, request.body.encrypted_key, request.version), request.version)
    except HandleProtocolError:
        raise await service.core.auth.failed(peer, f"hs-{transport}",
                                             "the session key does not decrypt with the server key") from None
    kept = service.sessions.update(session_id, lambda s: s.with_key(key, int(cipher)) if not s.keyed else None)
    if kept is None:
        raise Refused(RC.SESSION_TIMEOUT, "session expired or unknown; set up a new one")
    return service.reply(request, EmptyResponse())


def terminate(service: "HandleService", request: Message) -> Message:
    """End the session the (already verified) request came in."""
    service.sessions.close(request.envelope.session_id)
    return service.reply(request, EmptyResponse())


def login_identity(request: Message) -> tuple[str, int]:
    return request.body.handle, request.body.index


def bind(service: "HandleService", link: Link, caller: Caller) -> None:
    """A login succeeded: the connection acts as ``caller`` from now on."""
    if link.identity is None:
        service.metrics.logins.inc()
    identity = caller.identity
    link.identity = (identity.handle, identity.index)
    link.until = service.clock() + service.settings.handle.login_timeout


async def password_login(service: "HandleService", request: Message, peer: str, transport: str,
                         link: Link | None) -> Message:
    """opCode 2000 as the CAICT SDK sends it: the secret itself, checked at
    once (no challenge) under the lock-out policy, answered RC 1 with the
    identity handle. A bare handle means its admin secret at index 300."""
    body = request.body
    if link is None:
        return service.error(request, RC.ERROR, "a login holds for one TCP connection; log in over TCP")
    try:
        if ":" in body.handle.partition("/")[0]:
            index, handle = parse_identity(body.handle)
        else:
            index, handle = (body.indexes[0] if body.indexes else PASSWORD_LOGIN_INDEX), body.handle
        parse_handle(handle)
        password = body.password.decode("utf-8")
    except (ValueError, InvalidHandle, UnicodeDecodeError):
        return service.error(request, RC.INVALID_CREDENTIAL, "malformed login: the user must be an admin identity "
                                                             "like 300:88.118.8/ADMIN, the password UTF-8")
    try:
        caller = await service.core.auth.password(handle, index, password, peer, f"hs-{transport}")
    except Refused as exc:
        return service.error(request, exc.code, exc.message)
    bind(service, link, caller)
    return service.reply(request, ResolutionResponse(body.handle, ()))


def unlink(service: "HandleService", link: Link) -> None:
    """The connection closed."""
    if link.identity is not None:
        service.metrics.logins.dec()
        link.identity = None


# ------------------------------------------------------------------ who a request comes from, replies signed

def certified(service: "HandleService", request: Message, reply: Message, peer: str) -> Message:
    """``reply`` signed, for a request that set CT: inside a keyed session
    with an HS_MAC made with the session key, each reply under a counter of
    its own (Handle.Net refuses one seen before), else (and always for a
    session setup, which the client checks against HS_SITE) with the server key."""
    session_id = request.envelope.session_id
    if session_id and request.op_code != OpCode.SESSION_SETUP:
        session = service.sessions.update(session_id, lambda s: s.replied() if s.keyed and s.peer == peer else None)
        if session is not None:
            return reply.with_(credential=mac_credential(session.key, reply, session.sent))
    service.metrics.signed.inc()
    return reply.with_(credential=sign(service.server_key, reply))


def unseal(service: "HandleService", data: bytes, peer: str) -> tuple[bytes, Session]:
    """An encrypted message (envelope flag) opened with its session's key."""
    envelope = Envelope.from_bytes(data, service.limits)
    session = service.sessions.get(envelope.session_id) if envelope.session_id else None
    if session is None or not session.keyed or session.peer != peer:
        raise HandleProtocolError("encrypted message outside a session of this client",
                                  request_id=envelope.request_id, envelope=envelope)
    return decrypt_wire(session.key, session.cipher, session.version, data, service.limits), session


def seal(reply: Message, session: Session) -> bytes:
    """The reply to an encrypted request, encrypted with the same session key."""
    return encrypt_wire(session.key, session.cipher, session.version, encode(reply))


async def caller_of(service: "HandleService", request: Message, peer: str, transport: str,
                    link: Link | None) -> tuple[Caller | None, Session | None]:
    """Who a request comes from without a new challenge: the identity
    logged in on its connection, or its session's (after the session's
    checks: this client's address, a right MAC, a counter not seen)."""
    auth, protocol = service.core.auth, f"hs-{transport}"
    if link is not None:
        identity = link.current(service.clock())
        if identity is not None:
            try:
                return await auth.resume(*identity, peer, protocol), None
            except Refused:
                unlink(service, link)
                raise
    session_id = request.envelope.session_id
    if not session_id:
        return None, None
    session = service.sessions.get(session_id)
    credential = request.credential
    if session is None:
        if credential is not None and credential.type == MAC:
            raise Refused(RC.SESSION_TIMEOUT, "session expired or unknown; set up a new one")
        return None, None          # an id this node did not give a session (a challenge's, a client's own)
    await auth.check_source(peer, protocol)
    if session.peer != peer:
        raise await auth.failed(peer, protocol, "this session belongs to another client")
    counter = verify_mac(session.key, request) if session.keyed and credential is not None else None
    if counter is None:
        raise await auth.failed(peer, protocol, "session message without a valid MAC")
    kept = service.sessions.update(session_id, lambda s: s.counted(counter))
    if kept is None:
        raise await auth.failed(peer, protocol, "session message replayed (counter already seen)")
    caller = await auth.resume(*kept.caller, peer, protocol) if kept.caller is not None else None
    return caller, kept


_ANY_INDEX = (0, 0xFFFFFFFF)       # what SDKs send when they name a handle, not one of its keys


def same_identity(named: tuple[str, int], proven: tuple[str, int]) -> bool:
    """Whether the identity a login or session setup named is the one an answer proved."""
    return named[0].casefold() == proven[0].casefold() and (named[1] in _ANY_INDEX or named[1] == proven[1])
