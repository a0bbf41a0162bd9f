"""Handle values (RFC 3651 section 3.1): immutable, slotted value objects.

``type`` is kept as text and ``data`` as bytes; unknown types pass through
untouched. Typed views of ``data`` live in :mod:`protocol.valuetypes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntFlag

DEFAULT_TTL = 86400
MAX_INDEX = 0xFFFFFFFF


class Perm(IntFlag):
    PUBLIC_WRITE = 0x1
    PUBLIC_READ = 0x2
    ADMIN_WRITE = 0x4
    ADMIN_READ = 0x8


DEFAULT_PERMS = Perm.ADMIN_READ | Perm.ADMIN_WRITE | Perm.PUBLIC_READ
ADMIN_ONLY_PERMS = Perm.ADMIN_READ | Perm.ADMIN_WRITE

# Types whose data is a secret: encrypted at rest, never returned to clients.
SECRET_TYPES = frozenset({"HS_SECKEY"})


@dataclass(frozen=True, slots=True)
class Reference:
    handle: str
    index: int


@dataclass(frozen=True, slots=True)
class HandleValue:
    index: int
    type: str
    data: bytes = b""
    ttl: int = DEFAULT_TTL
    ttl_absolute: bool = False  # False: ttl is relative seconds; True: unix time
    timestamp: int = 0          # unix seconds of the last change
    permissions: int = int(DEFAULT_PERMS)
    references: tuple[Reference, ...] = field(default=())

    @property
    def public_read(self) -> bool:
        return bool(self.permissions & Perm.PUBLIC_READ)

    @property
    def is_secret(self) -> bool:
        return self.type.upper() in SECRET_TYPES

    def with_(self, **changes) -> "HandleValue":
        return replace(self, **changes)


def readable(values, *, admin: bool = False) -> tuple[HandleValue, ...]:
    """The values a reader may see: never a secret; public-read ones, and
    admin-read ones too for an admin of the handle. The one copy of the rule."""
    return tuple(v for v in values if not v.is_secret
                 and (v.permissions & Perm.PUBLIC_READ or (admin and v.permissions & Perm.ADMIN_READ)))


def validate_values(values: "list[HandleValue] | tuple[HandleValue, ...]") -> None:
    """Raise ValueError on duplicate or out-of-range indexes or bad fields."""
    seen: set[int] = set()
    for v in values:
        if not 0 < v.index <= MAX_INDEX:
            raise ValueError(f"value index {v.index} out of range 1..{MAX_INDEX}")
        if v.index in seen:
            raise ValueError(f"duplicate value index {v.index}")
        seen.add(v.index)
        if not v.type:
            raise ValueError(f"value {v.index} has an empty type")
        if not 0 <= v.ttl <= 0xFFFFFFFF:
            raise ValueError(f"value {v.index} has ttl out of range")
        if not 0 <= v.permissions <= 0xF:
            raise ValueError(f"value {v.index} has permissions out of range")
