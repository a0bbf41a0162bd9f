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
_REQUEST = struct.Struct(">BBBBIIIIIIIHBBIII")   # envelope, message header, handle length: one read
_HEAD = struct.Struct(">BBBBIIIIIIIHBBII")       # a reply's envelope and message header: one write
_NOT_PLAIN = int(OpFlag.RD | OpFlag.CT)     # a digest to add, a reply to sign: the full path
_ECHO = int(ECHO_FLAGS)
_AT = int(OpFlag.AT)
_PLAIN_TAIL = bytes(12)          # index count 0, type count 0, credential length 0
_NO_CREDENTIAL = bytes(4)
_MIN_PLAIN = 20 + 24 + 4 + 1 + 12
_MAX_MINOR = MAX_VERSION[1]
_MAJOR, _MINOR = MAX_VERSION
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


_new = tuple.__new__             # a PlainResolution without the Python-level __new__ (hot path)


def peek_plain_resolution(data: bytes) -> PlainResolution | None:
    n = len(data)
    if n < _MIN_PLAIN:
        return None
    (major, minor, eflags, _sminor, session, request_id, seq, length,
     op, rc, flags, _serial, recursion, _reserved, expiration, body_len, hlen) = _REQUEST.unpack_from(data)
    if (major != 2 or not 1 <= minor <= _MAX_MINOR or eflags & 0xFC or seq or length != n - 20 or op != 1 or rc
            or flags & _NOT_PLAIN or body_len != n - 48 or hlen != n - 60 or hlen > MAX_HANDLE_BYTES
            or data[n - 12:] != _PLAIN_TAIL):
        return None
    try:
        handle = data[48:48 + hlen].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return _new(PlainResolution, (handle, minor, session, request_id, flags, recursion, expiration))


def plain_reply(req: PlainResolution, response_code: int, parts: tuple[bytes, ...], body_len: int, *,
                now: int, site_serial: int, lifetime: int = REPLY_LIFETIME) -> bytes:
    """The reply to ``req`` (same version and ids, echoed opFlags plus AT);
    ``parts`` is the body and credential as :func:`udp_parts` cuts them."""
    _handle, minor, session, request_id, flags, recursion, _expiration = req
    head = _HEAD.pack(2, minor, _MAJOR, _MINOR, session, request_id, 0, 28 + body_len,
                      1, response_code, (flags & _ECHO) | _AT, site_serial, recursion, 0, now + lifetime, body_len)
    return head + parts[0] if len(parts) == 1 else b"".join((head, *parts))


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
    _handle, minor, session, request_id, flags, recursion, _expiration = req
    length = HEADER + body_len + 4
    eflags = _MAJOR if len(parts) == 1 else _TRUNCATED | _MAJOR
    out = [_HEAD.pack(2, minor, eflags, _MINOR, session, request_id, 0, length,
                      1, response_code, (flags & _ECHO) | _AT, site_serial, recursion, 0, now + lifetime,
                      body_len) + parts[0]]
    for k in range(1, len(parts)):
        out.append(_ENV.pack(2, minor, eflags, _MINOR, session, request_id, k, length) + parts[k])
    return out
