"""Message bodies, requests and responses, as immutable slotted dataclasses.

Each body has ``to_bytes()`` and ``Body.from_bytes(data, limits)``; the bytes
are the body alone, without the optional request digest that precedes every
response body when the RD flag is set (that lives on the message, see
:mod:`protocol.handle.message`). Layouts follow RFC 3652 section 3 and
Handle.Net 9's ``Encoder`` (``net.handle.hdllib.Encoder``); decoders are
strict: the body must be used up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union

from protocol.codes import RC
from protocol.handle.codes import DIGEST_SIZES, HashCode, OpCode
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits, protocol_errors
from protocol.handle.valuecodec import read_handle, read_values, write_values
from protocol.values import HandleValue
from protocol.wire import Reader, Writer

_U32 = 0xFFFFFFFF


def _u32s(values: tuple[int, ...], what: str) -> None:
    if not all(0 <= v <= _U32 for v in values):
        raise ValueError(f"cannot encode: {what} must be 32-bit unsigned")


class _Body:
    """Shared ``to_bytes``/``from_bytes`` over each body's ``_write``/``_read``."""

    __slots__ = ()
    OP: ClassVar[OpCode | None] = None        # the opCode when the body implies one
    DEFAULT_RC: ClassVar[int] = 0             # response code it usually goes with (0: a request)

    def _write(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def _read(cls, r: Reader, limits: Limits):
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        w = Writer()
        self._write(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, limits: Limits = DEFAULT_LIMITS):
        """Decode a whole body; raise :class:`HandleProtocolError` on bad input."""
        with protocol_errors():
            r = Reader(data)
            body = cls._read(r, limits)
            r.expect_end()
            return body


# ------------------------------------------------------------------ resolution

@dataclass(frozen=True, slots=True)
class ResolutionRequest(_Body):
    """Resolve ``handle``; empty index and type lists mean "all values"."""

    OP = OpCode.RESOLUTION
    handle: str
    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()

    def _write(self, w: Writer) -> None:
        _u32s(self.indexes, "indexes")
        w.string(self.handle).u32(len(self.indexes))
        for i in self.indexes:
            w.u32(i)
        w.u32(len(self.types))
        for t in self.types:
            w.string(t)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "ResolutionRequest":
        handle = read_handle(r, limits)
        indexes = tuple(r.u32() for _ in range(r.count(4, limits.max_indexes)))
        types = tuple(r.string() for _ in range(r.count(4, limits.max_types)))
        return cls(handle, indexes, types)


@dataclass(frozen=True, slots=True)
class ResolutionResponse(_Body):
    OP = OpCode.RESOLUTION
    DEFAULT_RC = RC.SUCCESS
    handle: str
    values: tuple[HandleValue, ...] = ()

    def _write(self, w: Writer) -> None:
        w.string(self.handle)
        write_values(w, self.values)

    @staticmethod
    def splice(handle: str, encoded_values: bytes) -> bytes:
        """The body of ``ResolutionResponse(handle, values)`` from the values
        already encoded (count + values, as :func:`write_values` writes them)."""
        return Writer().string(handle).raw(encoded_values).getvalue()

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "ResolutionResponse":
        return cls(read_handle(r, limits), read_values(r, limits))


# ------------------------------------------------------------------ site info

@dataclass(frozen=True, slots=True)
class GetSiteInfoRequest(_Body):
    """The body is a handle string; clients send "/" (the CAICT SDK does)."""

    OP = OpCode.GET_SITE_INFO
    handle: str = "/"

    def _write(self, w: Writer) -> None:
        w.string(self.handle)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "GetSiteInfoRequest":
        return cls(read_handle(r, limits))


@dataclass(frozen=True, slots=True)
class GetSiteInfoResponse(_Body):
    """The body is one HS_SITE record (Handle.Net ``encodeGetSiteInfoResponse``:
    the site record itself, not a value list), kept as bytes; its typed view is
    ``protocol.valuetypes.SiteInfo.decode(site)``."""

    OP = OpCode.GET_SITE_INFO
    DEFAULT_RC = RC.SUCCESS
    site: bytes

    def _write(self, w: Writer) -> None:
        w.raw(self.site)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "GetSiteInfoResponse":
        return cls(r.raw(r.remaining))


# ------------------------------------------------------------------ errors, referrals

@dataclass(frozen=True, slots=True)
class ErrorResponse(_Body):
    """Body of every error response code: a message string, maybe empty."""

    DEFAULT_RC = RC.ERROR
    message: str = ""

    def _write(self, w: Writer) -> None:
        w.string(self.message)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "ErrorResponse":
        return cls(r.string())


@dataclass(frozen=True, slots=True)
class ReferralResponse(_Body):
    """RC 302/303: the handle to ask next (e.g. an HS_SERV handle) and, when
    present, the values saying where (``values is None``: none sent)."""

    DEFAULT_RC = RC.SERVICE_REFERRAL
    handle: str
    values: tuple[HandleValue, ...] | None = None

    def _write(self, w: Writer) -> None:
        w.string(self.handle)
        if self.values is not None:
            write_values(w, self.values)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "ReferralResponse":
        handle = read_handle(r, limits)
        return cls(handle, read_values(r, limits) if r.remaining else None)


# ------------------------------------------------------------------ administration

@dataclass(frozen=True, slots=True)
class _HandleValues(_Body):
    handle: str
    values: tuple[HandleValue, ...] = ()

    def _write(self, w: Writer) -> None:
        w.string(self.handle)
        write_values(w, self.values)

    @classmethod
    def _read(cls, r: Reader, limits: Limits):
        return cls(read_handle(r, limits), read_values(r, limits))


@dataclass(frozen=True, slots=True)
class CreateHandleRequest(_HandleValues):
    OP = OpCode.CREATE_HANDLE


@dataclass(frozen=True, slots=True)
class AddValueRequest(_HandleValues):
    OP = OpCode.ADD_VALUE


@dataclass(frozen=True, slots=True)
class ModifyValueRequest(_HandleValues):
    OP = OpCode.MODIFY_VALUE


@dataclass(frozen=True, slots=True)
class CreateHandleResponse(_Body):
    """Empty, or the created handle (Handle.Net 9 sends it, e.g. when minting)."""

    OP = OpCode.CREATE_HANDLE
    DEFAULT_RC = RC.SUCCESS
    handle: str | None = None

    def _write(self, w: Writer) -> None:
        if self.handle is not None:
            w.string(self.handle)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "CreateHandleResponse":
        return cls(read_handle(r, limits) if r.remaining else None)


@dataclass(frozen=True, slots=True)
class _HandleOnly(_Body):
    handle: str

    def _write(self, w: Writer) -> None:
        w.string(self.handle)

    @classmethod
    def _read(cls, r: Reader, limits: Limits):
        return cls(read_handle(r, limits))


@dataclass(frozen=True, slots=True)
class DeleteHandleRequest(_HandleOnly):
    OP = OpCode.DELETE_HANDLE


@dataclass(frozen=True, slots=True)
class ListHandlesRequest(_HandleOnly):
    """List the handles under a prefix; ``handle`` is the prefix handle
    (e.g. ``0.NA/88.118.8``)."""

    OP = OpCode.LIST_HANDLES


@dataclass(frozen=True, slots=True)
class GenericRequest(_HandleOnly):
    """Requests whose body is just a handle: home/unhome prefix, list homed
    prefixes, session terminate, next txn id, backup server."""


@dataclass(frozen=True, slots=True)
class RemoveValueRequest(_Body):
    OP = OpCode.REMOVE_VALUE
    handle: str
    indexes: tuple[int, ...] = ()

    def _write(self, w: Writer) -> None:
        _u32s(self.indexes, "indexes")
        w.string(self.handle).u32(len(self.indexes))
        for i in self.indexes:
            w.u32(i)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "RemoveValueRequest":
        handle = read_handle(r, limits)
        return cls(handle, tuple(r.u32() for _ in range(r.count(4, limits.max_indexes))))


@dataclass(frozen=True, slots=True)
class ListHandlesResponse(_Body):
    """One batch of handles (more follow while the CN opFlag is set)."""

    OP = OpCode.LIST_HANDLES
    DEFAULT_RC = RC.SUCCESS
    handles: tuple[str, ...] = ()

    def _write(self, w: Writer) -> None:
        w.u32(len(self.handles))
        for h in self.handles:
            w.string(h)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "ListHandlesResponse":
        return cls(tuple(read_handle(r, limits) for _ in range(r.count(4, limits.max_list_handles))))


@dataclass(frozen=True, slots=True)
class EmptyResponse(_Body):
    """Success with nothing to say (delete, add/remove/modify value, ...)."""

    DEFAULT_RC = RC.SUCCESS

    def _write(self, w: Writer) -> None:
        pass

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "EmptyResponse":
        return cls()


@dataclass(frozen=True, slots=True)
class RawBody(_Body):
    """A body this codec does not interpret (unknown or unsupported operation),
    kept byte for byte."""

    data: bytes = b""

    def _write(self, w: Writer) -> None:
        w.raw(self.data)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "RawBody":
        return cls(r.raw(r.remaining))


# ------------------------------------------------------------------ authentication

@dataclass(frozen=True, slots=True)
class Challenge(_Body):
    """RC 402 (authentication needed): the nonce to sign. The digest of the
    request it challenges is the message's ``request_digest`` (RFC 3652 3.5;
    Handle.Net ``ChallengeResponse`` always sets RD)."""

    DEFAULT_RC = RC.AUTHENTICATION_NEEDED
    nonce: bytes

    def _write(self, w: Writer) -> None:
        w.blob(self.nonce)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "Challenge":
        return cls(r.blob())


@dataclass(frozen=True, slots=True)
class ChallengeAnswerRequest(_Body):
    """opCode 200, the client's answer to a :class:`Challenge` (Handle.Net
    ``Encoder.encodeChallengeAnswer``): auth type (``HS_SECKEY`` or
    ``HS_PUBKEY``), key handle, key index, and the signed response; the nonce
    itself is not repeated. Parse ``answer`` with
    ``protocol.handle.challenge.SecretKeyAnswer`` / ``PublicKeyAnswer``."""

    OP = OpCode.CHALLENGE_RESPONSE
    auth_type: str
    key_handle: str
    key_index: int
    answer: bytes

    def _write(self, w: Writer) -> None:
        _u32s((self.key_index,), "key index")
        w.string(self.auth_type).string(self.key_handle).u32(self.key_index).blob(self.answer)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "ChallengeAnswerRequest":
        return cls(r.string(), read_handle(r, limits), r.u32(), r.blob())


@dataclass(frozen=True, slots=True)
class VerifyChallengeRequest(_Body):
    """opCode 201: ask the server holding an HS_SECKEY whether ``answer`` is
    right for ``nonce`` and ``request_digest``. Handle.Net sends the digest
    u32-length-prefixed (``digest_alg`` 0); a one-byte hash code followed by
    the digest is read too, as Handle.Net's decoder does."""

    OP = OpCode.VERIFY_CHALLENGE
    key_handle: str
    key_index: int
    nonce: bytes
    request_digest: bytes
    answer: bytes
    digest_alg: int = HashCode.MD5_OLD_FORMAT

    def _write(self, w: Writer) -> None:
        _u32s((self.key_index,), "key index")
        w.string(self.key_handle).u32(self.key_index).blob(self.nonce)
        if self.digest_alg == HashCode.MD5_OLD_FORMAT:
            w.blob(self.request_digest)
        else:
            w.u8(int(self.digest_alg)).raw(self.request_digest)
        w.blob(self.answer)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "VerifyChallengeRequest":
        handle, index, nonce = read_handle(r, limits), r.u32(), r.blob()
        alg = r.u8()
        if alg == 0:
            r.pos -= 1                     # the byte was the top of a u32 length
            digest = r.blob()
        elif alg in DIGEST_SIZES:
            alg = HashCode(alg)
            digest = r.raw(DIGEST_SIZES[alg])
        else:
            raise HandleProtocolError(f"unknown request digest type {alg}")
        return cls(handle, index, nonce, digest, r.blob(), HashCode(alg))


@dataclass(frozen=True, slots=True)
class VerifyChallengeResponse(_Body):
    OP = OpCode.VERIFY_CHALLENGE
    DEFAULT_RC = RC.SUCCESS
    valid: bool

    def _write(self, w: Writer) -> None:
        w.u8(1 if self.valid else 0)

    @classmethod
    def _read(cls, r: Reader, limits: Limits) -> "VerifyChallengeResponse":
        flag = r.u8()
        if flag > 1:
            raise HandleProtocolError(f"verify response flag {flag} is neither 0 nor 1")
        return cls(bool(flag))


Body = Union[
    ResolutionRequest, ResolutionResponse, GetSiteInfoRequest, GetSiteInfoResponse, ErrorResponse,
    ReferralResponse, CreateHandleRequest, CreateHandleResponse, DeleteHandleRequest, AddValueRequest,
    RemoveValueRequest, ModifyValueRequest, ListHandlesRequest, ListHandlesResponse, GenericRequest,
    EmptyResponse, Challenge, ChallengeAnswerRequest, VerifyChallengeRequest, VerifyChallengeResponse,
    RawBody,
]
