"""An async Handle protocol client over TCP, UDP and HTTP, with challenge-response,
sessions, IDIS login and signed replies.

::

    async with HandleClient("127.0.0.1", 2641) as client:            # or transport="udp" / "http"
        reply = await client.resolve("88.118.8/product-123")
        auth = SecretKeyAuth("88.118.8/ADMIN", 300, b"the secret")
        await client.create_handle("88.118.8/new", values, auth)

As Handle.Net's ``HandleResolver`` administers (a session, checked with the
server key from HS_SITE; every message MAC'd with the session key)::

    async with HandleClient(host, port, certify=True) as client:     # replies must be signed
        await client.setup_session(auth)                              # DH; or key_exchange=CIPHER_CLIENT ...
        await client.create_handle("88.118.8/new", values, auth)      # challenged once, then the session holds
        await client.terminate_session()

As the CAICT and IDPointer SDKs do (TCP only: the connection is logged in)::

    await client.login(auth)                                          # opCode 2001, answered once
    await client.create_handle("88.118.8/new", values)                # no credentials on this connection

The I/O lives here; every byte is read and written by :mod:`protocol.handle`.
A TCP client keeps its connection for the requests that follow (as the CAICT
SDK does); UDP requests and replies of any size travel as 492-byte packets;
HTTP posts ``application/x-hdl-message``. Replies are checked: same request
id, not expired by the client's (injectable) clock, the request digest right
when one was asked for, and a challenge only answered when its digest is of
the request this client sent. Failures raise :class:`HandleClientError`:
:class:`HandleResponseError` (the server said no: ``code``, ``message``) or
:class:`HandleTransportError` (could not talk to it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import quote

import aiohttp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, MAX_VERSION, PUBLIC_KEY, SECRET_KEY, AddValueRequest, Challenge,
                             ChallengeAnswerRequest, CreateHandleRequest, DeleteHandleRequest, Envelope,
                             ErrorResponse, GenericRequest, GetSiteInfoRequest, HandleProtocolError, Limits,
                             ListHandlesRequest,
                             Message, ModifyValueRequest, OpFlag, PublicKeyAnswer, Reassembler,
                             RemoveValueRequest, ResolutionRequest, ResolutionResponse, Version, challenge_data,
                             decode, encode, make_request, secret_key_answer, secret_key_code,
                             split_datagrams)
from protocol.handle import EnvFlag, OpCode
from protocol.handle.credential import MAC
from protocol.handle.session import (KeyExchange, LoginRequest, PasswordLoginRequest, SessionCipher,
                                     SessionExchangeKeyRequest, SessionSetupRequest)
from protocol.handle.sessioncrypto import (decrypt_wire, dh_client_keypair, dh_client_session_key, encrypt_wire,
                                           mac_credential, new_session_key, pack_session_key, public_key_bytes,
                                           rsa_decrypt_session_key, rsa_encrypt_session_key, unpack_session_key,
                                           verify_mac, verify_signature)
from protocol.values import HandleValue
from protocol.valuetypes import SiteInfo, WireError

HDL_MIME_TYPE = "application/x-hdl-message"
CLIENT_LIMITS = Limits(max_message_bytes=16 * 1024 * 1024)    # replies may be larger than requests


class HandleClientError(Exception):
    """The root of the client's errors."""


class HandleTransportError(HandleClientError):
    """No usable reply: connection refused or lost, timeout, malformed reply."""


class HandleMalformedReply(HandleTransportError):
    """The server answered bytes that are not a Handle reply (or lie about their length)."""


class HandleTimeout(HandleTransportError):
    """No whole reply within the client's timeout."""


class HandleResponseError(HandleClientError):
    """The server answered with an error response code."""

    def __init__(self, code: int, message: str = "", reply: Message | None = None):
        super().__init__(f"response code {code}" + (f": {message}" if message else ""))
        self.code = int(code)
        self.message = message
        self.reply = reply


# ------------------------------------------------------------------ credentials

@dataclass(frozen=True, slots=True)
class SecretKeyAuth:
    """An identity holding an HS_SECKEY secret (``index:handle``)."""

    handle: str
    index: int
    secret: bytes
    auth_type = SECRET_KEY

    def answer(self, challenge: Message) -> bytes:
        code = secret_key_code(challenge.version, challenge.envelope.suggested_version)
        return secret_key_answer(self.secret, challenge.body.nonce, challenge.request_digest.digest, code,
                                 salt=os.urandom(16))


@dataclass(frozen=True, slots=True)
class PublicKeyAuth:
    """An identity holding the private key of an HS_PUBKEY value (RSA or DSA)."""

    handle: str
    index: int
    private_key: Any               # cryptography RSAPrivateKey or DSAPrivateKey
    hash_alg: str = "SHA256"
    auth_type = PUBLIC_KEY

    def answer(self, challenge: Message) -> bytes:
        data = challenge_data(challenge.body.nonce, challenge.request_digest.digest)
        digest = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256}[self.hash_alg]()
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            signature = self.private_key.sign(data, padding.PKCS1v15(), digest)
        elif isinstance(self.private_key, dsa.DSAPrivateKey):
            signature = self.private_key.sign(data, digest)
        else:
            raise TypeError("private_key must be an RSA or DSA private key")
        return PublicKeyAnswer(self.hash_alg, signature).to_bytes()


Auth = SecretKeyAuth | PublicKeyAuth


# ------------------------------------------------------------------ transports

Opener = Callable[[bytes], bytes]      # an encrypted message (envelope + message) -> the same, decrypted


def _decode(whole: bytes, limits: Limits, opener: Opener | None) -> Message:
    if len(whole) > 2 and whole[2] & EnvFlag.ENCRYPTED and opener is not None:
        whole = opener(whole)
    return decode(whole, limits)


def split_messages(data: bytes, limits: Limits = CLIENT_LIMITS, opener: Opener | None = None) -> list[Message]:
    """Messages sent one after another (an HTTP body, a TCP stream read to its end)."""
    out, offset = [], 0
    while offset < len(data):
        env = Envelope.from_bytes(data[offset:offset + ENVELOPE_SIZE], limits)
        end = offset + ENVELOPE_SIZE + env.message_length
        if end > len(data):
            raise HandleProtocolError("reply cut short", request_id=env.request_id, envelope=env)
        out.append(_decode(data[offset:end], limits, opener))
        offset = end
    return out


def _more(msg: Message) -> bool:
    return OpFlag.CN in msg.op_flags


class TcpChannel:
    """One TCP connection, opened on first use and kept for the next requests
    (``keep=False``: a new connection for each request, as Handle.Net's
    ``HandleResolver`` does)."""

    def __init__(self, host: str, port: int, limits: Limits, local_host: str | None = None, keep: bool = True):
        self.host, self.port, self.limits, self.keep = host, port, limits, keep
        self._local = (local_host, 0) if local_host else None
        self.connects = 0
        self.opener: Opener | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def exchange(self, wire: bytes, request_id: int, handle: str) -> list[Message]:
        reused = self._writer is not None and not self._writer.is_closing() and not self._reader.at_eof()
        try:
            return await self._exchange(wire, request_id)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            nothing_read = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
            if not (reused and nothing_read):
                raise
            await self.close()                  # the server closed the idle connection: once more, anew
            return await self._exchange(wire, request_id)

    async def _exchange(self, wire: bytes, request_id: int) -> list[Message]:
        if self._writer is None or self._writer.is_closing() or self._reader.at_eof():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, local_addr=self._local)
            self.connects += 1
        self._writer.write(wire)
        await self._writer.drain()
        replies: list[Message] = []
        while not replies or _more(replies[-1]):
            head = await self._reader.readexactly(ENVELOPE_SIZE)
            env = Envelope.from_bytes(head, self.limits)
            msg = _decode(head + await self._reader.readexactly(env.message_length), self.limits, self.opener)
            if msg.request_id == request_id:
                replies.append(msg)
        if not self.keep:
            await self.close()
        return replies

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
            self._writer = self._reader = None


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(b"")         # e.g. ICMP port unreachable: fail the wait now


class UdpChannel:
    """A connected UDP socket; requests and replies of any size in 492-byte packets."""

    def __init__(self, host: str, port: int, limits: Limits, timeout: float, local_host: str | None = None):
        self.host, self.port, self.limits = host, port, limits
        self._local = (local_host, 0) if local_host else None
        self._reassembler = Reassembler(timeout=timeout, limits=limits)
        self.opener: Opener | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Datagrams | None = None

    async def exchange(self, wire: bytes, request_id: int, handle: str) -> list[Message]:
        if self._transport is None:
            loop = asyncio.get_running_loop()
            self._transport, self._protocol = await loop.create_datagram_endpoint(
                _Datagrams, remote_addr=(self.host, self.port), local_addr=self._local)
        for datagram in split_datagrams(wire):
            self._transport.sendto(datagram)
        replies: list[Message] = []
        while not replies or _more(replies[-1]):
            datagram = await self._protocol.queue.get()
            if not datagram:
                raise HandleTransportError(f"{self.host}:{self.port} refused the UDP request")
            whole = self._reassembler.feed("server", datagram, time.monotonic())
            if whole is not None:
                msg = _decode(whole, self.limits, self.opener)
                if msg.request_id == request_id:
                    replies.append(msg)
        return replies

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class HttpChannel:
    """``POST /{handle}`` with the message as the body."""

    def __init__(self, host: str, port: int, limits: Limits, local_host: str | None = None):
        self.base = f"http://{host}:{port}"
        self.limits = limits
        self._local = (local_host, 0) if local_host else None
        self.opener: Opener | None = None
        self._session: aiohttp.ClientSession | None = None

    async def exchange(self, wire: bytes, request_id: int, handle: str) -> list[Message]:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=self._local))
        url = f"{self.base}/{quote(handle, safe='')}"
        headers = {"Content-Type": HDL_MIME_TYPE, "Accept": HDL_MIME_TYPE}
        async with self._session.post(url, data=wire, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise HandleTransportError(f"{url}: HTTP {resp.status}")
        return [m for m in split_messages(body, self.limits, self.opener) if m.request_id == request_id]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# ------------------------------------------------------------------ the client

@dataclass(slots=True)
class ClientSession:
    """A session set up with the server: its id, key, and the counter of the last message sent."""

    id: int
    key: bytes
    cipher: int
    version: Version
    encrypt: bool = False
    counter: int = 0
    replies: set[int] = field(default_factory=set)     # counters of the server's MAC'd replies (never twice)


class HandleClient:
    """Requests to one server over one transport ("tcp", "udp" or "http")."""

    def __init__(self, host: str, port: int, *, transport: str = "tcp", timeout: float = 10.0,
                 clock: Callable[[], float] = time.time, version: Version = MAX_VERSION,
                 limits: Limits = CLIENT_LIMITS, local_host: str | None = None, certify: bool = False,
                 server_key: bytes | None = None, keep_connection: bool = True):
        """``local_host``: the address to send from (None: the system's choice).
        ``certify``: set CT on every request and accept only replies signed by
        the server key (``server_key`` in the Handle encoding, else the one in
        the server's HS_SITE) or, in a session, MAC'd with the session key.
        ``keep_connection=False`` (TCP): a new connection for every message."""
        if transport == "tcp":
            self.channel: Any = TcpChannel(host, port, limits, local_host, keep_connection)
        elif transport == "udp":
            self.channel = UdpChannel(host, port, limits, timeout, local_host)
        elif transport == "http":
            self.channel = HttpChannel(host, port, limits, local_host)
        else:
            raise ValueError(f"unknown transport {transport!r}")
        self.transport, self.timeout, self.clock, self.version = transport, timeout, clock, version
        self.certify, self.server_key = certify, server_key
        self.session: ClientSession | None = None
        self._ids = itertools.count(secrets.randbelow(1 << 30) + 1)

    async def __aenter__(self) -> "HandleClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    def _next_id(self) -> int:
        return next(self._ids) & 0x7FFFFFFF or next(self._ids)

    # -- exchanges ---------------------------------------------------------------------
    async def exchange(self, wire: bytes, request_id: int, handle: str = "") -> list[Message]:
        """Send encoded request bytes; the replies to ``request_id``, checked for
        expiry. Use it to replay captured requests byte for byte."""
        try:
            async with asyncio.timeout(self.timeout):
                replies = await self.channel.exchange(wire, request_id, handle)
        except HandleProtocolError as exc:
            await self.close()
            raise HandleMalformedReply(f"malformed reply: {exc}") from None
        except (OSError, EOFError, asyncio.IncompleteReadError, aiohttp.ClientError) as exc:
            await self.close()
            raise HandleTransportError(f"cannot talk to the server: {exc or type(exc).__name__}") from None
        except TimeoutError:
            await self.close()
            raise HandleTimeout(f"no reply within {self.timeout} s") from None
        now = self.clock()
        for reply in replies:
            if reply.expired(int(now)):
                raise HandleTransportError("the reply has expired (check the clocks)")
        return replies

    def _wire(self, request: Message) -> bytes:
        """The request as sent: in a session MAC'd with the session key (a
        challenge answer is not, as Handle.Net sends it), and encrypted when
        the session asks for it."""
        session = self.session
        if session is None or request.envelope.session_id != session.id or \
                request.op_code == OpCode.CHALLENGE_RESPONSE:
            return encode(request)
        session.counter += 1
        wire = encode(request.with_(credential=mac_credential(session.key, request, session.counter)))
        return encrypt_wire(session.key, session.cipher, session.version, wire) if session.encrypt else wire

    def _unseal(self, whole: bytes) -> bytes:
        session = self.session
        env = Envelope.from_bytes(whole[:ENVELOPE_SIZE], self.channel.limits)
        if session is None or env.session_id != session.id:
            raise HandleProtocolError("an encrypted reply outside this client's session")
        return decrypt_wire(session.key, session.cipher, session.version, whole, self.channel.limits)

    async def _check_signed(self, reply: Message) -> None:
        """A reply to a CT request must be signed: MAC'd in this client's session, else by the server key."""
        credential = reply.credential
        if credential is None:
            raise HandleTransportError("the reply to a certified request is not signed")
        if credential.type == MAC:
            session = self.session
            counter = verify_mac(session.key, reply) if session is not None and \
                reply.envelope.session_id == session.id else None
            if counter is None:
                raise HandleTransportError("the reply's session MAC does not verify")
            if counter in session.replies:             # as Handle.Net's SessionInfo.addSessionCounter
                raise HandleTransportError(f"the reply repeats session counter {counter} (a replay?)")
            session.replies.add(counter)
            return
        key = self.server_key if self.server_key is not None else await self.fetch_server_key()
        if not verify_signature(key, reply):
            raise HandleTransportError("the reply's signature does not verify with the server key")

    async def fetch_server_key(self) -> bytes:
        """The server's public key from its HS_SITE (kept for later replies).
        Asked without CT: there is no key yet to check a signature with (the
        HS_SITE a Handle.Net client trusts comes from the prefix record)."""
        request = make_request(GetSiteInfoRequest("/"), request_id=self._next_id(), now=int(self.clock()),
                               version=self.version)
        reply = (await self.send(request))[0]
        try:
            site = SiteInfo.decode(reply.body.site)
        except WireError as exc:
            raise HandleTransportError(f"malformed site information: {exc}") from None
        keys = [server.public_key for server in site.servers if server.public_key]
        if not keys:
            raise HandleTransportError("the server publishes no public key in HS_SITE")
        self.server_key = keys[0]
        return self.server_key

    async def _roundtrip(self, request: Message, handle: str) -> list[Message]:
        self.channel.opener = self._unseal
        replies = await self.exchange(self._wire(request), request.request_id, handle)
        if OpFlag.CT in request.op_flags:
            for reply in replies:
                await self._check_signed(reply)
        return replies

    async def send(self, request: Message, auth: Auth | None = None) -> list[Message]:
        """Send a request; answer a challenge with ``auth``; raise
        :class:`HandleResponseError` unless the final reply succeeded."""
        handle = getattr(request.body, "handle", "") or ""
        replies = await self._roundtrip(request, handle)
        first = replies[0]
        if first.response_code == RC.AUTHENTICATION_NEEDED and isinstance(first.body, Challenge):
            if auth is None:
                raise HandleResponseError(RC.AUTHENTICATION_NEEDED, "authentication needed", first)
            if first.request_digest is None or not first.request_digest.matches(request):
                raise HandleTransportError("the challenge is not for the request sent")
            body = ChallengeAnswerRequest(auth.auth_type, auth.handle, auth.index, auth.answer(first))
            answer = make_request(body, request_id=self._next_id(), now=int(self.clock()),
                                  op_flags=request.op_flags, version=request.version,
                                  session_id=first.envelope.session_id)
            replies = await self._roundtrip(answer, handle)
        for reply in replies:
            if reply.response_code != RC.SUCCESS:
                message = reply.body.message if isinstance(reply.body, ErrorResponse) else ""
                raise HandleResponseError(reply.response_code, message, reply)
        return replies

    def request(self, body, *, op_flags: OpFlag = OpFlag.REC | OpFlag.CA | OpFlag.PO,
                session_id: int | None = None, op_code: int | None = None, recursion_count: int = 0) -> Message:
        """A request; in this client's session unless ``session_id`` says
        otherwise; CT set when the client certifies."""
        if session_id is None:
            session_id = self.session.id if self.session is not None else 0
        if self.certify:
            op_flags |= OpFlag.CT
        version = self.session.version if self.session is not None and session_id == self.session.id else self.version
        return make_request(body, request_id=self._next_id(), now=int(self.clock()), op_flags=op_flags,
                            version=version, session_id=session_id, op_code=op_code, recursion_count=recursion_count)

    # -- sessions and logins ---------------------------------------------------------
    async def setup_session(self, auth: Auth | None = None, *, key_exchange: int = KeyExchange.DH,
                            exchange_key: Any = None, exchange_key_ref: tuple[str, int] | None = None,
                            timeout: int = 3600, encrypt: bool = False) -> ClientSession:
        """Set up a session as Handle.Net's ``setupSessionWithServer`` does:
        opCode 400 with CT, its reply checked against the server key. Key
        exchange: DH (default), CIPHER_CLIENT (``exchange_key``: an RSA
        private key whose public half is sent; one is made if None),
        CIPHER_HDL (the same, the public half named as a handle value:
        ``exchange_key_ref`` = (handle, index)), CIPHER_SERVER (the key is
        sent back encrypted to the server key, opCode 402). ``auth`` names the identity the session will be proven
        as (by the first challenge). Later requests of this client go in the
        session, MAC'd; ``encrypt``: encrypted too."""
        server_key = self.server_key if self.server_key is not None else await self.fetch_server_key()
        private = public = None
        if key_exchange == KeyExchange.DH:
            private, public = dh_client_keypair()
        elif key_exchange == KeyExchange.CIPHER_CLIENT:
            private = exchange_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = public_key_bytes(private.public_key())
        elif key_exchange == KeyExchange.CIPHER_HDL:
            if exchange_key is None or exchange_key_ref is None:
                raise ValueError("CIPHER_HDL needs exchange_key and exchange_key_ref")
            private = exchange_key
        elif key_exchange != KeyExchange.CIPHER_SERVER:
            raise ValueError(f"key exchange {key_exchange} is not offered by this client")
        ref_handle, ref_index = exchange_key_ref or ("", 0)
        body = SessionSetupRequest(int(key_exchange), timeout, auth.handle if auth else "", auth.index if auth else 0,
                                   public_key=public or b"", exchange_key_handle=ref_handle,
                                   exchange_key_index=ref_index)
        flags = OpFlag.REC | OpFlag.CA | OpFlag.PO | OpFlag.CT | OpFlag.RD
        request = make_request(body, request_id=self._next_id(), now=int(self.clock()), op_flags=flags,
                               version=self.version)
        reply = (await self.exchange(encode(request), request.request_id, "/"))[0]
        if reply.response_code != RC.SUCCESS:
            message = reply.body.message if isinstance(reply.body, ErrorResponse) else ""
            raise HandleResponseError(reply.response_code, message, reply)
        if not verify_signature(server_key, reply):
            raise HandleTransportError("the session setup reply is not signed by the server key in HS_SITE")
        version = reply.version
        data = reply.body.data
        if key_exchange == KeyExchange.DH:
            cipher, key = dh_client_session_key(private, data, version)
        elif key_exchange in (KeyExchange.CIPHER_CLIENT, KeyExchange.CIPHER_HDL):
            cipher, key = unpack_session_key(rsa_decrypt_session_key(private, data, version), version)
        else:
            cipher = SessionCipher.AES
            key = new_session_key(cipher)
            sealed = rsa_encrypt_session_key(data, pack_session_key(cipher, key, version), version)
            exchange = make_request(SessionExchangeKeyRequest(sealed), request_id=self._next_id(),
                                    now=int(self.clock()), op_flags=OpFlag.REC | OpFlag.CA | OpFlag.PO,
                                    version=version, session_id=reply.envelope.session_id)
            done = (await self.exchange(encode(exchange), exchange.request_id, "/"))[0]
            if done.response_code != RC.SUCCESS:
                message = done.body.message if isinstance(done.body, ErrorResponse) else ""
                raise HandleResponseError(done.response_code, message, done)
        self.session = ClientSession(reply.envelope.session_id, key, int(cipher), version, encrypt)
        return self.session

    async def terminate_session(self) -> None:
        """End this client's session (opCode 401, in the session)."""
        if self.session is None:
            return
        request = self.request(GenericRequest("/"), op_code=OpCode.SESSION_TERMINATE)
        try:
            await self.send(request)
        finally:
            self.session = None

    async def login(self, auth: Auth, *, password: bool = False) -> None:
        """IDIS login on this TCP connection, as the CAICT and IDPointer SDKs
        send it: opCode 2001, the node challenges and ``auth`` answers; or,
        with ``password`` (a :class:`SecretKeyAuth`), opCode 2000 carrying the
        secret itself, as the CAICT SDK's password login does. Later requests
        on the connection need no credentials."""
        if self.transport != "tcp":
            raise ValueError("an IDIS login holds for one TCP connection")
        if password:
            if not isinstance(auth, SecretKeyAuth):
                raise TypeError("a password login needs a SecretKeyAuth")
            body = PasswordLoginRequest(f"{auth.index}:{auth.handle}", auth.secret)
            await self.send(self.request(body, session_id=0, op_flags=OpFlag(0)))
            return
        request = self.request(LoginRequest(auth.handle, auth.index), session_id=0, op_flags=OpFlag.RD)
        await self.send(request, auth)

    # -- operations ------------------------------------------------------------------
    async def resolve(self, handle: str, *, indexes: Sequence[int] = (), types: Sequence[str] = (),
                      auth: Auth | None = None, digest: bool = False, recursive: bool = True,
                      recursion_count: int = 0) -> ResolutionResponse:
        """The values of ``handle``; with ``auth`` the request asks for
        non-public values too and authenticates when challenged.
        ``recursive=False`` clears REC (a node walking the hierarchy itself
        asks each server for what it holds); ``recursion_count``: the nodes
        the request has crossed."""
        flags = (OpFlag.REC if recursive else OpFlag(0)) | OpFlag.CA | (OpFlag(0) if auth else OpFlag.PO) | \
            (OpFlag.RD if digest else OpFlag(0))
        session_id = None if self.session is not None else (secrets.randbelow(0x7FFFFFFF) + 1 if auth else 0)
        request = self.request(ResolutionRequest(handle, tuple(indexes), tuple(types)), op_flags=flags,
                               session_id=session_id, recursion_count=recursion_count)
        reply = (await self.send(request, auth))[0]
        if digest and (reply.request_digest is None or not reply.request_digest.matches(request)):
            raise HandleTransportError("the reply's request digest does not match the request")
        return reply.body

    async def site_info(self) -> SiteInfo:
        reply = (await self.send(self.request(GetSiteInfoRequest("/"))))[0]
        try:
            return SiteInfo.decode(reply.body.site)
        except WireError as exc:
            raise HandleTransportError(f"malformed site information: {exc}") from None

    async def create_handle(self, handle: str, values: Sequence[HandleValue], auth: Auth | None = None, *,
                            mint: bool = False, overwrite: bool = False) -> str:
        """Create ``handle``; with ``overwrite`` (OVRW) replace the values of one that exists."""
        flags = (OpFlag.MINT if mint else OpFlag(0)) | (OpFlag.OVRW if overwrite else OpFlag(0))
        reply = (await self.send(self.request(CreateHandleRequest(handle, tuple(values)), op_flags=flags), auth))[0]
        return reply.body.handle or handle

    async def delete_handle(self, handle: str, auth: Auth | None = None) -> None:
        await self.send(self.request(DeleteHandleRequest(handle), op_flags=OpFlag(0)), auth)

    async def add_values(self, handle: str, values: Sequence[HandleValue], auth: Auth | None = None, *,
                         overwrite: bool = False) -> None:
        flags = OpFlag.OVRW if overwrite else OpFlag(0)
        await self.send(self.request(AddValueRequest(handle, tuple(values)), op_flags=flags), auth)

    async def remove_values(self, handle: str, indexes: Sequence[int], auth: Auth | None = None) -> None:
        await self.send(self.request(RemoveValueRequest(handle, tuple(indexes)), op_flags=OpFlag(0)), auth)

    async def modify_values(self, handle: str, values: Sequence[HandleValue], auth: Auth | None = None) -> None:
        await self.send(self.request(ModifyValueRequest(handle, tuple(values)), op_flags=OpFlag(0)), auth)

    async def list_handles(self, prefix: str, auth: Auth | None = None) -> list[str]:
        """Every handle under ``prefix`` (e.g. ``88.118.8``), over as many replies as it takes."""
        replies = await self.send(self.request(ListHandlesRequest(f"0.NA/{prefix}"), op_flags=OpFlag(0)), auth)
        return [h for reply in replies for h in reply.body.handles]


def parse_server(text: str, default_port: int = 2641) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``, or a bare host for port 2641) as (host, port)."""
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, raw = text.partition(":")
        port = int(raw)
    if not host or not 0 < port < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, port


async def resolve_record(server: str, handle: str, *, udp: bool = False, timeout: float = 10.0,
                         recursive: bool = True, recursion_count: int = 0,
                         limits: Limits = CLIENT_LIMITS) -> tuple[str, tuple[HandleValue, ...]]:
    """One resolution (the CLI's, a walk's): ``server`` is ``HOST:PORT``. Over
    UDP, an RC 2 refusal (an answer too large for UDP, a rate-limited source)
    is asked again over TCP, as Handle.Net's resolver does. ``recursive=False``
    clears REC (a client walking the referrals itself); ``recursion_count``:
    the nodes the request crossed; ``limits``: the largest reply taken.
    A success that is not a resolution response is a malformed reply."""
    host, port = parse_server(server)

    async def over(transport: str) -> tuple[str, tuple[HandleValue, ...]]:
        async with HandleClient(host, port, transport=transport, timeout=timeout, limits=limits) as client:
            reply = await client.resolve(handle, recursive=recursive, recursion_count=recursion_count)
        if not isinstance(reply, ResolutionResponse):
            raise HandleMalformedReply("the reply to a resolution is not a resolution response")
        return reply.handle, tuple(reply.values)

    if udp:
        try:
            return await over("udp")
        except HandleResponseError as exc:
            if exc.code != RC.ERROR:
                raise
    return await over("tcp")
