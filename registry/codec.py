"""The stored form of values, whose SHA-256 is the digest in the audit log
(and a record's version).

Every backend stores this form, so the same change has the same digest
whatever store recorded it.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

import cbor2

from protocol.handle.valuecodec import write_values
from protocol.values import HandleValue, Reference, public_values
from protocol.wire import Writer

from .errors import RegistryError


# -- encoding -------------------------------------------------------------------
def encode_values(values: Iterable[HandleValue], now: int = 0) -> bytes:
    """The stored (and digested) form: a CBOR array of value arrays.

    A value with timestamp 0 (never stamped) is stamped ``now``.
    """
    out = []
    for v in values:
        item = [v.index, v.type, v.data, v.ttl, v.ttl_absolute, v.timestamp or now, v.permissions]
        if v.references:
            item.append([[r.handle, r.index] for r in v.references])
        out.append(item)
    return cbor2.dumps(out)


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
