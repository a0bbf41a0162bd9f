"""Records the registry keeps and hands out."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.quickinit import quick_init
from protocol.values import HandleValue

from .codec import decode_values, digest

# Prefix states. A disabled prefix keeps its identifiers, but the node serves
# none of them and takes no writes under it until it is enabled again.
ENABLED = "enabled"
DISABLED = "disabled"
PREFIX_STATES = (ENABLED, DISABLED)


class HandleRecord:
    """An identifier as registered (NFC), its values sorted by index (secret
    values still sealed), and whether its prefix is disabled (read with it).

    A record read for resolution (:meth:`stored`) also keeps its values in
    their stored form: decoded on first use and kept until :meth:`release`,
    after which they are decoded again on each use. A cache releases a record
    once the front ends have rendered it, so a cached entry holds the compact
    form and the renderings, not decoded values."""

    __slots__ = ("handle", "_values", "_blob", "_keep", "prefix_disabled", "ready")

    def __init__(self, handle: str, values: tuple[HandleValue, ...] = (), prefix_disabled: bool = False):
        self.handle = handle
        self._values: tuple[HandleValue, ...] | None = tuple(values)
        self._blob: bytes | None = None
        self._keep = True
        self.prefix_disabled = prefix_disabled
        self.ready: bytes | None = None          # public values ready for a reply (registry.codec.ready_values)

    @classmethod
    def stored(cls, handle: str, blob: bytes, prefix_disabled: bool = False,
               ready: bytes | None = None) -> "HandleRecord":
        record = cls(handle, (), prefix_disabled)
        record._values, record._blob, record.ready = None, blob, ready
        return record

    @property
    def values(self) -> tuple[HandleValue, ...]:
        values = self._values
        if values is None:
            values = decode_values(self._blob)
            if self._keep:
                self._values = values
        return values

    def version(self) -> str | None:
        """The digest of the stored form (what the audit log calls this record's
        state, and a conditional write its version); None for a record not read
        from the store."""
        return digest(self._blob) if self._blob is not None else None

    def release(self) -> int:
        """Keep only the stored form from now on; the bytes that frees (estimated)."""
        if self._blob is None or not self._keep:
            return 0
        before = self.size
        self._keep, self._values, self.ready = False, None, None
        return before - self.size

    @property
    def size(self) -> int:
        """Roughly the bytes it holds."""
        n = len(self.handle) + 120 + (len(self._blob) if self._blob is not None else 0)
        if self.ready is not None:
            n += len(self.ready) + 33
        if self._values is not None:
            n += sum(250 + len(v.type) + len(v.data) for v in self._values)
        return n

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HandleRecord):
            return NotImplemented
        return (self.handle, self.values, self.prefix_disabled) == (other.handle, other.values,
                                                                    other.prefix_disabled)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HandleRecord({self.handle!r}, {self.values!r}, prefix_disabled={self.prefix_disabled})"


@dataclass(frozen=True, slots=True)
class Versioned:
    """A record (None: absent) with the version a conditional write names
    (``expect=``): the write goes through only if the record is still that
    version. ``ABSENT`` is the version of a record that does not exist."""
    record: HandleRecord | None
    version: str


ABSENT = ""


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    prefix: str                       # e.g. "88.118.8"
    owner: str
    credit_code: str = ""             # unified social credit code (18 chars)
    contact: str = ""
    state: str = ENABLED
    created: int = 0

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    """An admin identity ``index:handle`` (e.g. ``300:88.118.8/ADMIN``).

    ``scope`` is the enterprise prefix it administers, or ``None`` for the
    node admin (``300:0.NA/<secondary prefix>``), which manages prefixes.
    Only the slow hash is kept here; the recoverable copy of the secret is
    the HS_SECKEY value of the admin handle, sealed under the node key.
    """
    handle: str
    index: int
    scope: str | None
    password_hash: str                # "scrypt$n$r$p$salt_b64$hash_b64"

    @property
    def identity(self) -> str:
        return f"{self.index}:{self.handle}"


@quick_init
@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    operation: str
    handle: str
    before_digest: str
    after_digest: str


@dataclass(frozen=True, slots=True)
class Changes:
    """What one write (or one look at the change feed) changed: identifiers,
    prefixes whose state changed (every identifier under them), or, when a
    reader fell too far behind to know, everything."""
    handles: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    everything: bool = False
    versions: tuple[str, ...] = ()   # the feed's: each handle's digest after its last change ("" deleted)

    def __bool__(self) -> bool:
        return bool(self.handles or self.prefixes or self.everything)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next`` is the cursor of the following page
    (None on the last one). Cursors are opaque text."""
    items: tuple[str, ...]
    next: str | None


@quick_init
@dataclass(frozen=True, slots=True)
class ItemResult:
    """Per-item outcome of a batch write."""
    handle: str
    code: int                          # protocol.codes.RC value
    message: str = ""
