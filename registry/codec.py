"""The stored form of values, whose SHA-256 is the digest in the audit log
(and a record's version).

Every backend stores this form, so the same change has the same digest
whatever store recorded it.

:func:`encode_values` writes exactly the bytes ``cbor2.dumps`` writes for the
same value arrays (:func:`encode_values_cbor2`, the plain path, which it
falls back to for anything unusual: references, numbers past 32 bits, fields
not exactly int, bool, str or bytes). It is quicker because a value's index
and type, and its ttl, stamp and permissions, repeat from record to record:
their encoded pieces are kept, so a value costs two look-ups and a join.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

import cbor2

from protocol.handle.valuecodec import write_values
from protocol.values import HandleValue, Reference, public_values
from protocol.wire import Writer

from .errors import RegistryError

_U32 = 0xFFFFFFFF
_MAX_PIECES = 4096          # kept pieces; past that they are dropped and built again


# -- encoding -------------------------------------------------------------------
def encode_values_cbor2(values: Iterable[HandleValue], now: int = 0) -> bytes:
    """The stored form as cbor2 writes it: the plain path of :func:`encode_values`."""
    out = []
    for v in values:
        item = [v.index, v.type, v.data, v.ttl, v.ttl_absolute, v.timestamp or now, v.permissions]
        if v.references:
            item.append([[r.handle, r.index] for r in v.references])
        out.append(item)
    return cbor2.dumps(out)


def _head(major: int, n: int) -> bytes:
    """A CBOR item head (major type and argument) in the shortest form, as cbor2 writes it."""
    if n < 24:
        return bytes((major << 5 | n,))
    if n < 0x100:
        return bytes((major << 5 | 24, n))
    if n < 0x10000:
        return bytes((major << 5 | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((major << 5 | 26,)) + n.to_bytes(4, "big")
    return bytes((major << 5 | 27,)) + n.to_bytes(8, "big")


_BYTES_HEADS = tuple(_head(2, n) for n in range(1024))
_ARRAY_HEADS = tuple(_head(4, n) for n in range(64))
_FIELD_TYPES = (int, str, int, bool, int, int)
# (index, type, ttl, ttl_absolute, stamp, permissions) -> the encoded array head up to
# the data, and the rest; b"" when cbor2 must write values with these fields.
_pieces: dict[tuple, tuple[bytes, bytes]] = {}
_PLAIN = (b"", b"")


def _piece(key: tuple) -> tuple[bytes, bytes]:
    index, vtype, ttl, absolute, stamp, perms = key
    pieces = _PLAIN
    if tuple(map(type, key)) == _FIELD_TYPES and all(0 <= n <= _U32 for n in (index, ttl, stamp, perms)):
        try:
            text = vtype.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            pieces = (b"\x87" + _head(0, index) + _head(3, len(text)) + text,
                      _head(0, ttl) + (b"\xf5" if absolute else b"\xf4") + _head(0, stamp) + _head(0, perms))
    if len(_pieces) >= _MAX_PIECES:
        _pieces.clear()
    _pieces[key] = pieces
    return pieces


def encode_values(values: Iterable[HandleValue], now: int = 0) -> bytes:
    """The stored (and digested) form: a CBOR array of value arrays
    ``[index, type, data, ttl, ttl_absolute, timestamp, permissions(, references)]``.

    A value with timestamp 0 (never stamped) is stamped ``now``.
    """
    if type(values) is not list and type(values) is not tuple:
        values = list(values)
    n = len(values)
    out = [_ARRAY_HEADS[n] if n < 64 else _head(4, n)]
    add = out.append
    known = _pieces.get
    for v in values:
        index, ttl, absolute, stamp, perms = v.index, v.ttl, v.ttl_absolute, v.timestamp or now, v.permissions
        key = (index, v.type, ttl, absolute, stamp, perms)
        try:
            head, tail = known(key) or _piece(key)
        except TypeError:                       # a field that cannot be a key (a list as type)
            return encode_values_cbor2(values, now)
        data = v.data
        # A hit can be a key that is only equal (True == 1 == 1.0): the types must be the exact ones.
        if not head or v.references or type(data) is not bytes or type(index) is not int or type(ttl) is not int \
                or type(stamp) is not int or type(perms) is not int or type(absolute) is not bool:
            return encode_values_cbor2(values, now)
        size = len(data)
        add(head)
        add(_BYTES_HEADS[size] if size < 1024 else _head(2, size))
        add(data)
        add(tail)
    return b"".join(out)


def ready_values(values: Iterable[HandleValue], now: int = 0) -> bytes:
    """The values anyone may read (:func:`protocol.values.public_values`),
    stamped as :func:`encode_values` stamps them, in the Handle wire form a
    resolution reply carries (count, then each value): kept beside the stored
    form by every backend, so a cold read splices bytes instead of decoding
    and encoding again. Not digested: it follows from the stored form."""
    w = Writer()
    write_values(w, public_values(values), now)
    return w.getvalue()


def decode_values(blob: bytes) -> tuple[HandleValue, ...]:
    try:
        return tuple(
            HandleValue(i, t, d, ttl, ta, ts, perms,
                        tuple(Reference(rh, ri) for rh, ri in refs[0]) if refs else ())
            for i, t, d, ttl, ta, ts, perms, *refs in cbor2.loads(blob))
    except (cbor2.CBORDecodeError, ValueError, TypeError):
        raise RegistryError("stored values are damaged") from None


def digest(blob: bytes | None) -> str:
    """The audit digest of a stored blob, which is also the record's version; "" when absent."""
    return hashlib.sha256(blob).hexdigest() if blob is not None else ""


def record_digest(*fields: Any) -> str:
    return digest(cbor2.dumps(list(fields)))


def secret_aad(key: str, index: int) -> bytes:
    """What a sealed value is bound to: its handle key and index."""
    return key.encode() + b"\0" + index.to_bytes(4, "big")
