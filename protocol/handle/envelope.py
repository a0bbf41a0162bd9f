"""The fixed parts of a Handle message: 20-byte envelope and 24-byte header.

Envelope (RFC 3652 2.2.1): major, minor, flags (+ suggested major in the low
two bits), suggested minor, session id, request id, sequence number, message
length. Header (2.2.2): opCode, responseCode, opFlags, site-info serial,
recursion count, reserved, expiration, body length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from protocol.codes import RC
from protocol.handle.codes import MAX_VERSION, MIN_VERSION, EnvFlag, OpCode, OpFlag, Version, as_rc
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits

ENVELOPE_SIZE = 20
HEADER_SIZE = 24

_ENVELOPE = struct.Struct(">BBBBIIII")
_HEADER = struct.Struct(">IIIHBBII")
_U32 = 0xFFFFFFFF


def _check(cond: bool, what: str) -> None:
    """Refuse to encode a field that does not fit (a caller bug, not bad input)."""
    if not cond:
        raise ValueError(f"cannot encode: {what}")


@dataclass(frozen=True, slots=True)
class Envelope:
    """Message envelope. ``suggested_major``/``suggested_minor`` are kept as
    sent (0.0 means "same as major.minor"); see :attr:`suggested_version`."""

    major: int = MAX_VERSION[0]
    minor: int = MAX_VERSION[1]
    flags: EnvFlag = EnvFlag(0)
    suggested_major: int = MAX_VERSION[0]
    suggested_minor: int = MAX_VERSION[1]
    session_id: int = 0
    request_id: int = 0
    sequence: int = 0
    message_length: int = 0

    @property
    def version(self) -> Version:
        return (self.major, self.minor)

    @property
    def suggested_version(self) -> Version:
        """What the sender suggests; its own version when it sent 0 (Handle.Net
        ``Encoder.decodeEnvelope``)."""
        if self.suggested_major == 0:
            return self.version
        return (self.suggested_major, self.suggested_minor)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & EnvFlag.TRUNCATED)

    @property
    def compressed(self) -> bool:
        return bool(self.flags & EnvFlag.COMPRESSED)

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & EnvFlag.ENCRYPTED)

    def with_(self, **changes) -> "Envelope":
        return replace(self, **changes)

    def to_bytes(self) -> bytes:
        _check(0 <= self.major <= 0xFF and 0 <= self.minor <= 0xFF, "version bytes")
        _check(0 <= self.suggested_major <= 3, "suggested major version is 2 bits")
        _check(0 <= self.suggested_minor <= 0xFF, "suggested minor version is 8 bits")
        _check(0 <= int(self.flags) <= 0xFF and not int(self.flags) & 0x03, "flag bits 0x03 hold the suggested major")
        _check(all(0 <= v <= _U32 for v in (self.session_id, self.request_id, self.sequence,
                                              self.message_length)), "envelope integers are 32 bits")
        return _ENVELOPE.pack(self.major, self.minor, int(self.flags) | self.suggested_major,
                              self.suggested_minor, self.session_id, self.request_id,
                              self.sequence, self.message_length)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS,
                   *, check_version: bool = True) -> "Envelope":
        """Decode the first 20 bytes of ``data``; refuse a message longer than
        ``limits.max_message_bytes`` and (unless told not to) a version outside
        2.1..2.11. The error carries the envelope and request id."""
        if len(data) < ENVELOPE_SIZE:
            raise HandleProtocolError(f"envelope needs {ENVELOPE_SIZE} bytes, have {len(data)}")
        major, minor, flags, s_minor, session, request, seq, length = _ENVELOPE.unpack_from(data, 0)
        env = cls(major, minor, EnvFlag(flags & 0xFC), flags & 0x03, s_minor, session, request, seq, length)
        if length > limits.max_message_bytes:
            raise HandleProtocolError(f"message length {length} over the limit {limits.max_message_bytes}",
                                      request_id=request, envelope=env)
        if check_version and not MIN_VERSION <= env.version <= MAX_VERSION:
            raise HandleProtocolError(f"protocol version {major}.{minor} not supported",
                                      request_id=request, envelope=env)
        return env


@dataclass(frozen=True, slots=True)
class Header:
    """Message header without its body length (computed when encoding).
    ``response_code`` is 0 in requests; it is an :class:`RC` or a plain int."""

    op_code: OpCode
    response_code: "RC | int" = 0
    op_flags: OpFlag = OpFlag(0)
    site_serial: int = 0xFFFF      # clients send 0xFFFF (no site info yet)
    recursion_count: int = 0
    expiration: int = 0            # unix seconds
    reserved: int = 0

    @property
    def is_response(self) -> bool:
        return self.response_code != 0

    def with_(self, **changes) -> "Header":
        return replace(self, **changes)

    def to_bytes(self, body_length: int) -> bytes:
        _check(all(0 <= int(v) <= _U32 for v in (self.op_code, self.response_code, self.op_flags,
                                                   self.expiration, body_length)),
               "header integers are 32 bits")
        _check(0 <= self.site_serial <= 0xFFFF, "site serial is 16 bits")
        _check(0 <= self.recursion_count <= 0xFF and 0 <= self.reserved <= 0xFF, "recursion/reserved are 8 bits")
        return _HEADER.pack(int(self.op_code), int(self.response_code), int(self.op_flags), self.site_serial,
                            self.recursion_count, self.reserved, self.expiration, body_length)

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> "tuple[Header, int]":
        """The header at ``offset`` and the body length it announces."""
        if len(data) - offset < HEADER_SIZE:
            raise HandleProtocolError(f"header needs {HEADER_SIZE} bytes, have {max(0, len(data) - offset)}")
        op, rc, flags, serial, recursion, reserved, expiration, body_len = _HEADER.unpack_from(data, offset)
        return cls(OpCode(op), as_rc(rc), OpFlag(flags), serial, recursion, expiration, reserved), body_len
