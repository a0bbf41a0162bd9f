"""Hand-built wire bytes for the Handle tests, written from HANDLE-WIRE.md with
struct, independent of the codec under test."""

from __future__ import annotations

import struct
from pathlib import Path

# Copied from ../shared/fixtures/handle-wire (requests captured from real clients).
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "handle-wire"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def u8(v: int) -> bytes:
    return struct.pack(">B", v)


def u16(v: int) -> bytes:
    return struct.pack(">H", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def s(text: str) -> bytes:
    raw = text.encode()
    return u32(len(raw)) + raw


def blob(raw: bytes) -> bytes:
    return u32(len(raw)) + raw


def value(index: int, vtype: str, data: bytes, *, timestamp: int = 0, ttl_type: int = 0, ttl: int = 86400,
          perms: int = 0x0E, refs: tuple[tuple[str, int], ...] = ()) -> bytes:
    out = u32(index) + u32(timestamp) + u8(ttl_type) + u32(ttl) + u8(perms) + s(vtype) + blob(data) + u32(len(refs))
    for handle, idx in refs:
        out += s(handle) + u32(idx)
    return out


def hs_admin(perms: int, handle: str, index: int) -> bytes:
    return u16(perms) + s(handle) + u32(index)


def hs_vlist(refs: tuple[tuple[str, int], ...]) -> bytes:
    return u32(len(refs)) + b"".join(s(h) + u32(i) for h, i in refs)


def hs_site(*, serial: int = 1, servers=((1, "127.0.0.1", b"", ((3, 1, 2641), (3, 0, 2641))),),
            attributes=(("desc", "test site"),), mask: int = 0x80, hash_option: int = 2) -> bytes:
    out = u16(1) + u8(2) + u8(11) + u16(serial) + u8(mask) + u8(hash_option) + s("")
    out += u32(len(attributes)) + b"".join(s(n) + s(v) for n, v in attributes)
    out += u32(len(servers))
    for server_id, ipv4, key, interfaces in servers:
        addr = bytes(10) + b"\xff\xff" + bytes(int(p) for p in ipv4.split("."))
        out += u32(server_id) + addr + blob(key) + u32(len(interfaces))
        out += b"".join(u8(t) + u8(proto) + u32(port) for t, proto, port in interfaces)
    return out


def envelope(major: int, minor: int, request_id: int, length: int, *, flags: int = 0, s_major: int = 0,
             s_minor: int = 0, session: int = 0, seq: int = 0) -> bytes:
    return struct.pack(">BBBBIIII", major, minor, flags | s_major, s_minor, session, request_id, seq, length)


def header(op: int, rc: int, flags: int, body_len: int, *, serial: int = 0xFFFF, recursion: int = 0,
           expiration: int = 0) -> bytes:
    return struct.pack(">IIIHBBII", op, rc, flags, serial, recursion, 0, expiration, body_len)


def message(op: int, rc: int, body: bytes, *, flags: int = 0, major: int = 2, minor: int = 11,
            request_id: int = 7, expiration: int = 0, credential: bytes = b"") -> bytes:
    msg = header(op, rc, flags, len(body), expiration=expiration) + body + blob(credential)
    return envelope(major, minor, request_id, len(msg), s_major=2, s_minor=11) + msg
