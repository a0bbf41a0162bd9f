"""Records the registry keeps and hands out."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.values import HandleValue

# Prefix states. A disabled prefix keeps its identifiers, but the node serves
# none of them and takes no writes under it until it is enabled again.
ENABLED = "enabled"
DISABLED = "disabled"
PREFIX_STATES = (ENABLED, DISABLED)


@dataclass(frozen=True, slots=True)
class HandleRecord:
    handle: str                       # as registered (NFC)
    values: tuple[HandleValue, ...]   # sorted by index; secret values still sealed
    prefix_disabled: bool = False     # its prefix is disabled (read together with the record)


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

    def __bool__(self) -> bool:
        return bool(self.handles or self.prefixes or self.everything)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``next`` is the cursor of the following page
    (None on the last one). Cursors are opaque text."""
    items: tuple[str, ...]
    next: str | None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """Per-item outcome of a batch write."""
    handle: str
    code: int                          # protocol.codes.RC value
    message: str = ""
