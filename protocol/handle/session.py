"""Bodies of session setup (opCode 400), session key exchange (402) and the
IDIS login requests (2000, 2001).

Layouts follow Handle.Net 9's ``Encoder`` (``encodeSessionSetupRequest``,
``decodeSessionSetupRequest``, ``encodeSessionSetupResponse``,
``decodeSetupSessionResponse``, ``encodeSessionExchangeKeyRequest``), read in
the CNRI-derived copy ``cn.teleinfo.idpointer.sdk.core`` of the IDPointer
SDK, and that SDK's ``MsgConverter.convertLoginIDSystemReqToBytes``:

* session setup request: u16 key exchange mode, u32 timeout (seconds),
  identity handle (string, empty for an anonymous session), u32 identity
  index; then for :attr:`KeyExchange.CIPHER_CLIENT` and :attr:`KeyExchange.DH`
  the exchange public key (u32 length + Handle-encoded key, e.g.
  ``DH_PUB_KEY``), for :attr:`KeyExchange.CIPHER_HDL` the exchange key handle
  (string) and u32 index, nothing more for :attr:`KeyExchange.CIPHER_SERVER`.
* session setup response (RC 1, after the request digest): u16 mode, then
  the mode's data (u32 length + bytes); what the data holds per mode is in
  :mod:`protocol.handle.sessioncrypto`.
* both: Handle.Net counts the u16 mode as four bytes in the header's body
  length, so two zero bytes end every body it writes. Decoders accept any
  trailing bytes (Handle.Net's decoders never look at them) and keep them in
  ``padding``, so that re-encoding, request digests and MACs see the bytes
  the sender sent; new bodies get Handle.Net's two zeros.
* session exchange key request (opCode 402): u32 length + the session key
  encrypted with the server's RSA public key; its RC 1 answer is empty.
* IDIS key login (opCode 2001, the CAICT and IDPointer SDKs): identity
  handle (string) + u32 index, the SDK's default index being -1
  (0xFFFFFFFF). The SDK ignores the body of the RC 1 answer.
* IDIS password login (opCode 2000, the CAICT SDK 2.0.3, seen on the wire):
  laid out as a resolution request, identity handle, index list (u32 count,
  u32 each), type list (u32 count, strings) whose one "type" is the
  password, in clear. No challenge: the answer is RC 1 with the identity
  handle and a value list (u32 count, values), as ``LoginIDSystemIdResponse``
  reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from protocol.codes import RC
from protocol.handle.bodies import _Body
from protocol.handle.codes import OpCode
from protocol.handle.errors import HandleProtocolError, Limits
from protocol.handle.valuecodec import read_handle
from protocol.wire import Reader, Writer

PADDING = b"\x00\x00"        # what Handle.Net writes after a session setup body
MAX_KEY_BYTES = 16 * 1024    # exchange keys, encrypted session keys, response data
MAX_PADDING = 64             # trailing bytes accepted after a session setup body
DEFAULT_SESSION_TIMEOUT = 24 * 60 * 60   # Handle.Net Common.DEFAULT_SESSION_TIMEOUT
_U32 = 0xFFFFFFFF


class KeyExchange(IntEnum):
    """How a session key is agreed (Handle.Net ``Common.KEY_EXCHANGE_*``)."""

    NONE = 0            # no session (Handle.Net refuses to encode it)
    CIPHER_CLIENT = 1   # the server encrypts a fresh key to the client's RSA key
    CIPHER_SERVER = 2   # the client encrypts a fresh key to the server's RSA key (opCode 402)
    CIPHER_HDL = 3      # as CIPHER_CLIENT, the RSA key read from a handle value
    DH = 4              # Diffie-Hellman


class SessionCipher(IntEnum):
    """Session encryption algorithm (Handle.Net ``HdlSecurityProvider.ENCRYPT_ALG_*``)."""

    DES = 1
    DESEDE = 2
    AES = 3


def _mode(value: int) -> "KeyExchange | int":
    try:
        return KeyExchange(value)
    except ValueError:
        return value          # kept: the server answers "unrecognized key exchange mode"


def _blob(r: Reader, what: str) -> bytes:
    n = r.u32()
    if n > MAX_KEY_BYTES:
        raise HandleProtocolError(f"{what} of {n} bytes over the limit {MAX_KEY_BYTES}")
    return r.raw(n)


def _padding(r: Reader) -> bytes:
    if r.remaining > MAX_PADDING:
        raise HandleProtocolError(f"{r.remaining} bytes after the session setup body")
    return r.raw(r.remaining)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise ValueError(f"cannot encode: {what}")


@dataclass(frozen=True, slots=True)
class SessionSetupRequest(_Body):
    """opCode 400. ``public_key`` (Handle-encoded) goes with CIPHER_CLIENT and
    DH, ``exchange_key_handle``/``exchange_key_index`` with CIPHER_HDL; an
    identity index of 0xFFFFFFFF (-1) with an empty handle is anonymous."""

    OP = OpCode.SESSION_SETUP
    mode: "KeyExchange | int"
    timeout: int
    identity_handle: str
    identity_index: int
    public_key: bytes = b""
    exchange_key_handle: str = ""
    exchange_key_index: int = 0
    padding: bytes = PADDING

    def _write(self, w: Writer) -> None:
        _check(0 <= int(self.mode) <= 0xFFFF, "key exchange mode is 16 bits")
        _check(all(0 <= v <= _U32 for v in (self.timeout, self.identity_index, self.exchange_key_index)),
               "timeout and indexes are 32-bit unsigned")
        _check(len(self.public_key) <= MAX_KEY_BYTES and len(self.padding) <= MAX_PADDING, "field too long")
        w.u16(int(self.mode)).u32(self.timeout).string(self.identity_handle).u32(self.identity_index)
        if self.mode in (KeyExchange.CIPHER_CLIENT, KeyExchange.DH):
            w.blob(self.public_key)
        elif self.mode == KeyExchange.CIPHER_HDL:
            w.string(self.exchange_key_handle).u32(self.exchange_key_index)
        w.raw(self.padding)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "SessionSetupRequest":
        mode, timeout = _mode(r.u16()), r.u32()
        handle, index = read_handle(r, limits), r.u32()
        public_key, key_handle, key_index = b"", "", 0
        if mode in (KeyExchange.CIPHER_CLIENT, KeyExchange.DH):
            public_key = _blob(r, "exchange key")
        elif mode == KeyExchange.CIPHER_HDL:
            key_handle, key_index = read_handle(r, limits), r.u32()
        return cls(mode, timeout, handle, index, public_key, key_handle, key_index, _padding(r))


@dataclass(frozen=True, slots=True)
class SessionSetupResponse(_Body):
    """opCode 400, RC 1: the mode the server chose and its data (the session
    id is in the envelope)."""

    OP = OpCode.SESSION_SETUP
    DEFAULT_RC = RC.SUCCESS
    mode: "KeyExchange | int"
    data: bytes = b""
    padding: bytes = PADDING

    def _write(self, w: Writer) -> None:
        _check(0 <= int(self.mode) <= 0xFFFF, "key exchange mode is 16 bits")
        _check(len(self.data) <= MAX_KEY_BYTES and len(self.padding) <= MAX_PADDING, "field too long")
        w.u16(int(self.mode)).blob(self.data).raw(self.padding)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "SessionSetupResponse":
        mode = _mode(r.u16())
        return cls(mode, _blob(r, "session setup data"), _padding(r))


@dataclass(frozen=True, slots=True)
class SessionExchangeKeyRequest(_Body):
    """opCode 402: the session key the client chose, encrypted with the
    server's RSA public key (see ``sessioncrypto.rsa_encrypt_session_key``)."""

    OP = OpCode.SESSION_EXCHANGE_KEY
    encrypted_key: bytes

    def _write(self, w: Writer) -> None:
        _check(len(self.encrypted_key) <= MAX_KEY_BYTES, "encrypted key too long")
        w.blob(self.encrypted_key)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "SessionExchangeKeyRequest":
        return cls(_blob(r, "encrypted session key"))


@dataclass(frozen=True, slots=True)
class LoginRequest(_Body):
    """opCode 2001 (login with key): who logs in. The server answers with a
    challenge (RC 402), then RC 1 with an empty body."""

    OP = OpCode.LOGIN_KEY
    handle: str
    index: int = _U32

    def _write(self, w: Writer) -> None:
        _check(0 <= self.index <= _U32, "index is 32-bit unsigned")
        w.string(self.handle).u32(self.index)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "LoginRequest":
        return cls(read_handle(r, limits), r.u32())


@dataclass(frozen=True, slots=True)
class PasswordLoginRequest(_Body):
    """opCode 2000 (login with password) as the CAICT SDK sends it: the
    identity handle (``index:handle`` or a bare handle), an index list, and
    the password where a resolution request has its type list."""

    OP = OpCode.LOGIN_PASSWORD
    handle: str
    password: bytes
    indexes: tuple[int, ...] = ()

    def _write(self, w: Writer) -> None:
        _check(all(0 <= i <= _U32 for i in self.indexes), "indexes are 32-bit unsigned")
        _check(len(self.password) <= MAX_KEY_BYTES, "password too long")
        w.string(self.handle).u32(len(self.indexes))
        for index in self.indexes:
            w.u32(index)
        w.u32(1).blob(self.password)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "PasswordLoginRequest":
        handle, count = read_handle(r, limits), r.u32()
        if count > limits.max_indexes:
            raise HandleProtocolError(f"{count} indexes over the limit {limits.max_indexes}")
        indexes = tuple(r.u32() for _ in range(count))
        if r.u32() != 1:
            raise HandleProtocolError("a password login carries exactly one password")
        return cls(handle, _blob(r, "password"), indexes)
