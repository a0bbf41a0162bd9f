"""Records the registry keeps besides handle values."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.values import HandleValue


@dataclass(frozen=True, slots=True)
class HandleRecord:
    handle: str                       # as registered (NFC)
    values: tuple[HandleValue, ...]   # sorted by index


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    prefix: str                       # e.g. "88.118.8"
    owner: str
    credit_code: str = ""             # unified social credit code (18 chars)
    contact: str = ""
    state: str = "enabled"            # "enabled" | "disabled"
    created: int = 0


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    """An admin identity ``index:handle`` (e.g. ``300:88.118.8/ADMIN``).

    ``scope`` is the enterprise prefix it administers, or ``None`` for the
    node admin (``300:0.NA/<secondary prefix>``), which manages prefixes.
    Only the slow hash is kept here; the recoverable copy of the secret is
    the HS_SECKEY value of the admin handle, encrypted under the node key.
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
class ItemResult:
    """Per-item outcome of a batch write."""
    handle: str
    code: int                          # protocol.codes.RC value
    message: str = ""
