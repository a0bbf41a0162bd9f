"""Handle values on the wire (RFC 3651 3.1, Handle.Net ``Encoder.encodeHandleValue``).

index u32, timestamp u32, ttl type u8 (0 relative, 1 absolute), ttl u32,
permissions u8, type (string), data (u32 length + bytes), references (u32
count, then handle string + u32 index each). ``data`` stays opaque bytes;
typed views (HS_ADMIN, HS_SITE, HS_VLIST ...) are :mod:`protocol.valuetypes`.
"""

from __future__ import annotations

import struct

from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits, protocol_errors
from protocol.values import HandleValue, Reference
from protocol.wire import Reader, Writer

MIN_VALUE_SIZE = 4 + 4 + 1 + 4 + 1 + 4 + 4 + 4   # every field present, all empty
_U32 = 0xFFFFFFFF
_LENGTH = struct.Struct(">I")
_FIXED = struct.Struct(">IIBIBI")       # index, timestamp, ttl type, ttl, permissions, type length


def read_handle(r: Reader, limits: Limits) -> str:
    """A handle string, refused when longer than ``limits.max_handle_bytes``."""
    n = r.u32()
    if n > limits.max_handle_bytes:
        raise HandleProtocolError(f"handle of {n} bytes over the limit {limits.max_handle_bytes}")
    raw = r.raw(n)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HandleProtocolError("handle is not valid UTF-8") from None


def write_value(w: Writer, v: HandleValue, stamp: int = 0) -> None:
    """``stamp``: the timestamp written for a value that has none (0)."""
    timestamp = v.timestamp or stamp
    if not (0 <= v.index <= _U32 and 0 <= timestamp <= _U32 and 0 <= v.ttl <= _U32
            and 0 <= v.permissions <= 0xFF):
        raise ValueError(f"cannot encode value {v.index}: a field does not fit its wire size")
    try:
        vtype = v.type.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"cannot encode value {v.index}: its type is not UTF-8") from None
    # One write per value (this runs for every value of every write and every cold answer).
    data, refs = v.data, v.references
    w.raw(b"".join((_FIXED.pack(v.index, timestamp, 1 if v.ttl_absolute else 0, v.ttl, v.permissions, len(vtype)),
                    vtype, _LENGTH.pack(len(data)), data, _LENGTH.pack(len(refs)))))
    for ref in refs:
        if not 0 <= ref.index <= _U32:
            raise ValueError(f"cannot encode reference index {ref.index}")
        w.string(ref.handle).u32(ref.index)


def read_value(r: Reader, limits: Limits = DEFAULT_LIMITS) -> HandleValue:
    index, timestamp, ttl_type, ttl, perms = r.u32(), r.u32(), r.u8(), r.u32(), r.u8()
    if ttl_type > 1:
        raise HandleProtocolError(f"value {index}: unknown ttl type {ttl_type}")
    vtype = r.string()
    data = r.blob()
    refs = tuple(Reference(read_handle(r, limits), r.u32())
                 for _ in range(r.count(8, limits.max_references)))
    return HandleValue(index=index, type=vtype, data=data, ttl=ttl, ttl_absolute=bool(ttl_type),
                       timestamp=timestamp, permissions=perms, references=refs)


def write_values(w: Writer, values: "tuple[HandleValue, ...] | list[HandleValue]", stamp: int = 0) -> None:
    """u32 count, then each value (``stamp``: see :func:`write_value`)."""
    w.u32(len(values))
    for v in values:
        write_value(w, v, stamp)


def read_values(r: Reader, limits: Limits = DEFAULT_LIMITS) -> tuple[HandleValue, ...]:
    return tuple(read_value(r, limits) for _ in range(r.count(MIN_VALUE_SIZE, limits.max_values)))


def encode_value(v: HandleValue) -> bytes:
    w = Writer()
    write_value(w, v)
    return w.getvalue()


def decode_value(data: bytes, limits: Limits = DEFAULT_LIMITS) -> HandleValue:
    """One value that must fill ``data`` exactly."""
    with protocol_errors():
        r = Reader(data)
        v = read_value(r, limits)
        r.expect_end()
        return v
