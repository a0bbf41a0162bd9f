"""Whole messages: envelope + header + [request digest] + body + credential.

``decode(data)`` takes envelope and message in one buffer (HTTP bodies, one
UDP datagram or a reassembled set, a TCP read of ``20 + message_length``
bytes); ``decode_message(envelope, data)`` takes the message after an
envelope already read with ``Envelope.from_bytes``. ``encode(msg)`` gives
envelope + message with the length filled in. ``make_reply`` builds the
answer to a request in the request's own version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from protocol.codes import RC
from protocol.handle import bodies as B
from protocol.handle import session as S
from protocol.handle.codes import (DIGEST_SIZES, MAX_VERSION, MIN_VERSION, HashCode, OpCode, OpFlag, Version,
                                   at_least, digest_code_for)
from protocol.handle.credential import Credential
from protocol.handle.envelope import ENVELOPE_SIZE, HEADER_SIZE, Envelope, Header
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits
from protocol.wire import Reader, WireError, Writer

REPLY_LIFETIME = 43200   # seconds a reply stays valid (Handle.Net: twelve hours)
# Request opFlags a reply carries over (Handle.Net AbstractMessage.takeValuesFrom, plus REC).
ECHO_FLAGS = OpFlag.AT | OpFlag.CT | OpFlag.ENC | OpFlag.REC | OpFlag.CA | OpFlag.PO | OpFlag.DNRF

_REQUESTS: dict[int, type] = {
    OpCode.RESOLUTION: B.ResolutionRequest,
    OpCode.GET_SITE_INFO: B.GetSiteInfoRequest,
    OpCode.CREATE_HANDLE: B.CreateHandleRequest,
    OpCode.DELETE_HANDLE: B.DeleteHandleRequest,
    OpCode.ADD_VALUE: B.AddValueRequest,
    OpCode.REMOVE_VALUE: B.RemoveValueRequest,
    OpCode.MODIFY_VALUE: B.ModifyValueRequest,
    OpCode.LIST_HANDLES: B.ListHandlesRequest,
    OpCode.CHALLENGE_RESPONSE: B.ChallengeAnswerRequest,
    OpCode.VERIFY_CHALLENGE: B.VerifyChallengeRequest,
    OpCode.HOME_PREFIX: B.GenericRequest,
    OpCode.UNHOME_PREFIX: B.GenericRequest,
    OpCode.LIST_HOMED_PREFIXES: B.GenericRequest,
    OpCode.SESSION_SETUP: S.SessionSetupRequest,
    OpCode.SESSION_TERMINATE: B.GenericRequest,
    OpCode.SESSION_EXCHANGE_KEY: S.SessionExchangeKeyRequest,
    OpCode.LOGIN_PASSWORD: S.PasswordLoginRequest,
    OpCode.LOGIN_KEY: S.LoginRequest,
    OpCode.GET_NEXT_TXN_ID: B.GenericRequest,
    OpCode.BACKUP_SERVER: B.GenericRequest,
}
_SUCCESSES: dict[int, type] = {
    OpCode.RESOLUTION: B.ResolutionResponse,
    OpCode.GET_SITE_INFO: B.GetSiteInfoResponse,
    OpCode.CREATE_HANDLE: B.CreateHandleResponse,
    OpCode.LIST_HANDLES: B.ListHandlesResponse,
    OpCode.LIST_HOMED_PREFIXES: B.ListHandlesResponse,
    OpCode.VERIFY_CHALLENGE: B.VerifyChallengeResponse,
    OpCode.SESSION_SETUP: S.SessionSetupResponse,
    OpCode.LOGIN_PASSWORD: B.ResolutionResponse,        # the identity handle, no values (LoginIDSystemIdResponse)
    **{op: B.EmptyResponse for op in (OpCode.DELETE_HANDLE, OpCode.ADD_VALUE, OpCode.REMOVE_VALUE,
                                      OpCode.MODIFY_VALUE, OpCode.HOME_PREFIX, OpCode.UNHOME_PREFIX,
                                      OpCode.SESSION_TERMINATE, OpCode.SESSION_EXCHANGE_KEY,
                                      OpCode.BACKUP_SERVER, OpCode.LOGIN_KEY)},
}


def body_type(op_code: int, response_code: int, version: Version = MAX_VERSION) -> type:
    """The body class for an (opCode, responseCode) pair (Handle.Net
    ``Encoder.decodeMessage``); :class:`RawBody` for what is not interpreted."""
    if response_code == 0:
        return _REQUESTS.get(op_code, B.RawBody)
    if response_code == RC.SUCCESS:
        return _SUCCESSES.get(op_code, B.RawBody)
    if response_code == RC.AUTHENTICATION_NEEDED:
        return B.Challenge
    if response_code == RC.SERVICE_REFERRAL or (response_code == RC.PREFIX_REFERRAL and at_least(version, (2, 5))):
        return B.ReferralResponse
    return B.ErrorResponse


@dataclass(frozen=True, slots=True)
class RequestDigest:
    """Digest of the request's header + body, at the start of a response body
    when RD is set: u8 hash code (1 MD5, 2 SHA-1, 3 SHA-256) then the digest;
    code 0 is the old u32-length-prefixed MD5 form."""

    alg: HashCode
    digest: bytes

    @classmethod
    def compute(cls, alg: HashCode, data: bytes) -> "RequestDigest":
        name = {HashCode.MD5: "md5", HashCode.MD5_OLD_FORMAT: "md5", HashCode.SHA1: "sha1",
                HashCode.SHA256: "sha256"}.get(alg)
        if name is None:
            raise ValueError(f"{alg!r} is not a request digest algorithm")
        return cls(HashCode(alg), hashlib.new(name, data).digest())

    @classmethod
    def of(cls, request: "Message", alg: HashCode) -> "RequestDigest":
        return cls.compute(alg, header_and_body(request))

    def matches(self, request: "Message") -> bool:
        """Whether this digest is of ``request`` (a client checks its reply)."""
        return RequestDigest.compute(self.alg, header_and_body(request)).digest == self.digest

    def write(self, w: Writer) -> None:
        if self.alg == HashCode.MD5_OLD_FORMAT:
            w.blob(self.digest)
            return
        if len(self.digest) != DIGEST_SIZES.get(self.alg, -1):
            raise ValueError(f"digest of {len(self.digest)} bytes does not fit {self.alg!r}")
        w.u8(int(self.alg)).raw(self.digest)

    @classmethod
    def read(cls, r: Reader) -> "RequestDigest":
        alg = r.u8()
        if alg == HashCode.MD5_OLD_FORMAT:
            r.pos -= 1
            return cls(HashCode.MD5_OLD_FORMAT, r.blob())
        if alg not in DIGEST_SIZES:
            raise HandleProtocolError(f"unknown request digest type {alg}")
        return cls(HashCode(alg), r.raw(DIGEST_SIZES[HashCode(alg)]))


@dataclass(frozen=True, slots=True)
class Message:
    """One Handle message. A decoded message keeps the sender's envelope
    (version, suggested version, session and request ids) as it was."""

    header: Header
    body: B.Body
    envelope: Envelope = field(default_factory=Envelope)
    request_digest: RequestDigest | None = None    # responses only; sets RD when encoded
    credential: Credential | None = None

    @property
    def op_code(self) -> OpCode:
        return self.header.op_code

    @property
    def response_code(self) -> "RC | int":
        return self.header.response_code

    @property
    def op_flags(self) -> OpFlag:
        return self.header.op_flags

    @property
    def request_id(self) -> int:
        return self.envelope.request_id

    @property
    def version(self) -> Version:
        return self.envelope.version

    @property
    def is_response(self) -> bool:
        return self.header.is_response

    def expired(self, now: int) -> bool:
        """Whether the header's expiration time is before ``now`` (unix seconds);
        clients reject such replies."""
        return self.header.expiration < now

    def with_(self, **changes) -> "Message":
        return replace(self, **changes)


# ------------------------------------------------------------------ encode

def _check_body(msg: Message) -> None:
    want = body_type(msg.header.op_code, msg.header.response_code, msg.envelope.version)
    if type(msg.body) is not want and not isinstance(msg.body, B.RawBody):
        raise ValueError(f"a {type(msg.body).__name__} body does not go with opCode "
                         f"{int(msg.header.op_code)} and response code {int(msg.header.response_code)}"
                         f" (expected {want.__name__})")
    if msg.request_digest is not None and not msg.header.is_response:
        raise ValueError("a request carries no request digest (set the RD opFlag to ask for one)")


def header_and_body(msg: Message) -> bytes:
    """Header + body as sent: what request digests and signatures cover.
    For a response the RD flag follows ``request_digest``."""
    _check_body(msg)
    w = Writer()
    if msg.request_digest is not None:
        msg.request_digest.write(w)
    w.raw(msg.body.to_bytes())
    body = w.getvalue()
    header = msg.header
    if header.is_response:
        rd = int(OpFlag.RD)
        flags = int(header.op_flags) | rd if msg.request_digest else int(header.op_flags) & ~rd
        header = header.with_(op_flags=OpFlag(flags))
    return header.to_bytes(len(body)) + body


def encode_message(msg: Message) -> bytes:
    """The message without its envelope: header + body + credential."""
    cred = msg.credential.to_bytes() if msg.credential is not None else b""
    return header_and_body(msg) + len(cred).to_bytes(4, "big") + cred


def encode(msg: Message) -> bytes:
    """Envelope + message, the envelope's message length filled in."""
    message = encode_message(msg)
    return msg.envelope.with_(message_length=len(message)).to_bytes() + message


# ------------------------------------------------------------------ decode

def decode_message(envelope: Envelope, data: bytes | bytearray | memoryview,
                   limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode the ``envelope.message_length`` bytes that follow ``envelope``."""
    op_code = None
    try:
        if len(data) != envelope.message_length:
            raise HandleProtocolError(f"message is {len(data)} bytes, envelope says {envelope.message_length}")
        if envelope.compressed or envelope.encrypted:
            raise HandleProtocolError("compressed or encrypted messages are not supported")
        header, body_len = Header.unpack(data)
        op_code = header.op_code
        end = HEADER_SIZE + body_len
        if body_len > len(data) - HEADER_SIZE:
            raise HandleProtocolError(f"body length {body_len} runs past the message")
        r = Reader(data, HEADER_SIZE, end)
        digest = None
        if header.is_response and OpFlag.RD in header.op_flags:
            digest = RequestDigest.read(r)
        body = body_type(header.op_code, header.response_code, envelope.version)._read(r, limits)
        r.expect_end()
        credential = None
        if end < len(data):          # Handle.Net also accepts a message without the credential length
            cr = Reader(data, end)
            raw = cr.blob()
            cr.expect_end()
            credential = Credential.from_bytes(raw, limits) if raw else None
        return Message(header, body, envelope, digest, credential)
    except HandleProtocolError as e:
        raise e.with_context(envelope=envelope, op_code=op_code)
    except WireError as e:
        raise HandleProtocolError(str(e), request_id=envelope.request_id, envelope=envelope,
                                  op_code=op_code) from None


def decode(data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode envelope + message; the buffer must hold exactly one message."""
    envelope = Envelope.from_bytes(data, limits)
    want = ENVELOPE_SIZE + envelope.message_length
    if len(data) != want:
        raise HandleProtocolError(f"have {len(data)} bytes, envelope + message are {want}",
                                  request_id=envelope.request_id, envelope=envelope)
    return decode_message(envelope, memoryview(data)[ENVELOPE_SIZE:], limits)


# ------------------------------------------------------------------ building messages

def reply_version(version: Version) -> Version:
    """The version to answer a sender of ``version`` in: its own, within 2.1..2.11."""
    return max(MIN_VERSION, min(MAX_VERSION, tuple(version)))


def make_request(body: B.Body, *, request_id: int, now: int, op_code: int | None = None,
                 op_flags: OpFlag = OpFlag.REC | OpFlag.CA | OpFlag.PO, version: Version = MAX_VERSION,
                 suggested: Version = MAX_VERSION, session_id: int = 0, lifetime: int = REPLY_LIFETIME,
                 site_serial: int = 0xFFFF, recursion_count: int = 0,
                 credential: Credential | None = None) -> Message:
    """A request as a client sends it; ``op_code`` is needed only for bodies
    that do not imply one (:class:`GenericRequest`, :class:`RawBody`)."""
    op = op_code if op_code is not None else type(body).OP
    if op is None:
        raise ValueError(f"a {type(body).__name__} body needs an explicit op_code")
    header = Header(OpCode(op), 0, OpFlag(op_flags), site_serial, recursion_count, now + lifetime)
    env = Envelope(version[0], version[1], suggested_major=suggested[0], suggested_minor=suggested[1],
                   session_id=session_id, request_id=request_id)
    return Message(header, body, env, None, credential)


def make_reply(request: Message, body: B.Body, *, now: int, response_code: int | None = None,
               op_code: int | None = None, op_flags: OpFlag | None = None, lifetime: int = REPLY_LIFETIME,
               suggested: Version = MAX_VERSION, site_serial: int = 0xFFFF, digest: HashCode | None = None,
               credential: Credential | None = None, version: Version | None = None) -> Message:
    """The response to ``request`` in the request's version (or ``version``,
    within 2.1..2.11), with its request and session ids and opCode. ``response_code`` defaults from the body
    (success, 402 for a challenge, 302 for a referral, 2 for an error). The
    request digest is added when the request set RD, and always to a
    challenge; its hash is SHA-1 below 2.7, SHA-256 from 2.7 unless ``digest``
    names one. The expiration is ``now + lifetime``."""
    rc = response_code if response_code is not None else type(body).DEFAULT_RC
    if rc == 0:
        raise ValueError("a reply needs a non-zero response code")
    version = reply_version(version if version is not None else request.version)
    flags = OpFlag(op_flags if op_flags is not None else int(request.op_flags) & int(ECHO_FLAGS))
    rd = None
    if OpFlag.RD in request.op_flags or rc == RC.AUTHENTICATION_NEEDED:
        rd = RequestDigest.of(request, digest if digest is not None else digest_code_for(version))
    header = Header(OpCode(op_code if op_code is not None else request.op_code), rc, flags, site_serial,
                    request.header.recursion_count, now + lifetime)
    env = Envelope(version[0], version[1], suggested_major=suggested[0], suggested_minor=suggested[1],
                   session_id=request.envelope.session_id, request_id=request.request_id)
    return Message(header, body, env, rd, credential)


def protocol_error_reply(error: HandleProtocolError, *, now: int, message: str = "protocol error",
                         lifetime: int = REPLY_LIFETIME) -> Message | None:
    """An RC 4 answer to input that failed to decode, or None when not even
    the envelope could be read (nothing to answer to)."""
    env = error.envelope
    if env is None:
        return None
    version = reply_version(env.version)
    header = Header(OpCode(error.op_code if error.op_code is not None else 0), RC.PROTOCOL_ERROR, OpFlag(0),
                    0xFFFF, 0, now + lifetime)
    out = Envelope(version[0], version[1], suggested_major=MAX_VERSION[0], suggested_minor=MAX_VERSION[1],
                   session_id=env.session_id, request_id=env.request_id)
    return Message(header, B.ErrorResponse(message), out)
