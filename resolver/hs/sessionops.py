"""Sessions and logins on the wire: opCodes 400, 401, 402, 2000 and 2001.

The protocol's parts only: the key exchanges of a session setup (Handle.Net
``HandleServer.processSessionSetup`` as its client expects it), ending a
session, the IDIS login that the CAICT and IDPointer SDKs send before any
change, and the :class:`Link` that holds a TCP connection's login. Who may
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
from protocol.handle import EmptyResponse, HandleProtocolError, Message, ResolutionResponse
from protocol.handle.session import KeyExchange, SessionCipher, SessionSetupResponse
from protocol.handle.sessioncrypto import (dh_server_exchange, new_session_key, pack_session_key,
                                           rsa_decrypt_session_key, rsa_encrypt_session_key, unpack_session_key)
from protocol.identifier import InvalidHandle, parse_handle
from protocol.valuetypes import has_type

from ..core.auth import parse_identity
from ..core.caller import Caller, anonymous
from ..core.errors import Refused
from ..query import Query

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
