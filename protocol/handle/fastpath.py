"""The commonest request, read and answered without building message objects.

A *plain resolution* is a single-packet resolution request (opCode 1) in
version 2.1..2.11 with no envelope flags, no RD or CT (nothing to add, nothing
to sign), empty index and type lists
and no credential, its handle within the default 255-byte limit: what every
Handle client sends for a lookup.
:func:`peek_plain_resolution` recognises one with two struct reads and a
length check (anything else returns None: the caller falls back to the full
decoder, which also produces every error reply). :func:`plain_reply` writes
the reply exactly as :func:`protocol.handle.make_reply` + :func:`encode`
would for the same request (a property the tests check byte for byte), with
a body encoded ahead of time.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from protocol.handle.codes import MAX_VERSION, OpFlag
from protocol.handle.message import ECHO_FLAGS, REPLY_LIFETIME
from protocol.identifier import MAX_HANDLE_BYTES

_ENV = struct.Struct(">BBBBIIII")
_HDR = struct.Struct(">IIIHBBII")
_NOT_PLAIN = int(OpFlag.RD | OpFlag.CT)     # a digest to add, a reply to sign: the full path
_ECHO = int(ECHO_FLAGS)
_AT = int(OpFlag.AT)
_PLAIN_TAIL = bytes(12)          # index count 0, type count 0, credential length 0
_NO_CREDENTIAL = bytes(4)
_MIN_PLAIN = 20 + 24 + 4 + 1 + 12
HEADER = 24
UDP_PAYLOAD = 492                # message bytes per datagram
_TRUNCATED = 0x20


class PlainResolution(NamedTuple):
    handle: str
    minor: int
    session_id: int
    request_id: int
    op_flags: int
    recursion: int
    expiration: int


def peek_plain_resolution(data: bytes) -> PlainResolution | None:
    n = len(data)
    if n < _MIN_PLAIN:
        return None
    major, minor, eflags, _sminor, session, request_id, seq, length = _ENV.unpack_from(data, 0)
    if major != 2 or not 1 <= minor <= MAX_VERSION[1] or eflags & 0xFC or seq or length != n - 20:
        return None
    op, rc, flags, _serial, recursion, _reserved, expiration, body_len = _HDR.unpack_from(data, 20)
    hlen = int.from_bytes(data[44:48], "big")
    if (op != 1 or rc or flags & _NOT_PLAIN or body_len != n - 48 or hlen != n - 60 or hlen > MAX_HANDLE_BYTES
            or data[n - 12:] != _PLAIN_TAIL):
        return None
    try:
        handle = data[48:48 + hlen].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return PlainResolution(handle, minor, session, request_id, flags, recursion, expiration)


def _header(req: PlainResolution, response_code: int, body_len: int, now: int, site_serial: int,
            lifetime: int) -> bytes:
    return _HDR.pack(1, response_code, (req.op_flags & _ECHO) | _AT, site_serial, req.recursion, 0,
                     now + lifetime, body_len)


def plain_reply(req: PlainResolution, response_code: int, parts: tuple[bytes, ...], body_len: int, *,
                now: int, site_serial: int, lifetime: int = REPLY_LIFETIME) -> bytes:
    """The reply to ``req`` (same version and ids, echoed opFlags plus AT);
    ``parts`` is the body and credential as :func:`udp_parts` cuts them."""
    return b"".join((
        _ENV.pack(2, req.minor, MAX_VERSION[0], MAX_VERSION[1], req.session_id, req.request_id, 0, 28 + body_len),
        _header(req, response_code, body_len, now, site_serial, lifetime),
        *parts,
    ))


def udp_parts(body: bytes) -> tuple[bytes, ...]:
    """``body + credential`` cut where the datagrams of a reply cut it (the
    first datagram also carries the 24-byte header); computed once per body."""
    rest = body + _NO_CREDENTIAL
    first = UDP_PAYLOAD - HEADER
    return (rest[:first], *(rest[i:i + UDP_PAYLOAD] for i in range(first, len(rest), UDP_PAYLOAD)))


def plain_datagrams(req: PlainResolution, response_code: int, parts: tuple[bytes, ...], body_len: int, *,
                    now: int, site_serial: int, lifetime: int = REPLY_LIFETIME) -> list[bytes]:
    """The reply to ``req`` as UDP datagrams, exactly as ``split_datagrams``
    cuts :func:`plain_reply`; ``parts`` from :func:`udp_parts`."""
    length = HEADER + body_len + 4
    head = _header(req, response_code, body_len, now, site_serial, lifetime)
    if len(parts) == 1:
        return [b"".join((_ENV.pack(2, req.minor, MAX_VERSION[0], MAX_VERSION[1], req.session_id,
                                    req.request_id, 0, length), head, parts[0]))]
    flags = _TRUNCATED | MAX_VERSION[0]
    out = [b"".join((_ENV.pack(2, req.minor, flags, MAX_VERSION[1], req.session_id, req.request_id, 0, length),
                     head, parts[0]))]
    for k in range(1, len(parts)):
        out.append(_ENV.pack(2, req.minor, flags, MAX_VERSION[1], req.session_id, req.request_id, k, length)
                   + parts[k])
    return out
