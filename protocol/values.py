"""Handle values (RFC 3651 section 3.1): immutable, slotted value objects.

``type`` is kept as text and ``data`` as bytes; unknown types pass through
untouched. Typed views of ``data`` live in :mod:`protocol.valuetypes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntFlag
from typing import Iterable

from .quickinit import quick_init

DEFAULT_TTL = 86400
MAX_INDEX = 0xFFFFFFFF


class Perm(IntFlag):
    PUBLIC_WRITE = 0x1
    PUBLIC_READ = 0x2
    ADMIN_WRITE = 0x4
    ADMIN_READ = 0x8


DEFAULT_PERMS = Perm.ADMIN_READ | Perm.ADMIN_WRITE | Perm.PUBLIC_READ
_PUBLIC_READ = int(Perm.PUBLIC_READ)
ADMIN_ONLY_PERMS = Perm.ADMIN_READ | Perm.ADMIN_WRITE

# The type whose data is a secret (and its subtypes, in any ASCII case):
# sealed at rest, never returned to anyone.
SECRET_TYPE = "HS_SECKEY"
_SECRET_SUBTYPE = SECRET_TYPE + "."


def is_secret_type(value_type: str) -> bool:
    """Whether values of ``value_type`` hold a secret: ``HS_SECKEY`` or a
    subtype of it (``HS_SECKEY.backup``), ignoring ASCII case. The one copy
    of the rule, for sealing at rest and for what is never returned."""
    upper = value_type.upper()
    return upper == SECRET_TYPE or upper.startswith(_SECRET_SUBTYPE)


def public_values(values: "Iterable[HandleValue]") -> "tuple[HandleValue, ...]":
    """The values anyone may read: public-read and not secret. The one copy of
    the rule, for the operations layer's views and the registry's reply-ready form."""
    return tuple(v for v in values if v.permissions & _PUBLIC_READ and not is_secret_type(v.type))


@dataclass(frozen=True, slots=True)
class Reference:
    handle: str
    index: int


@quick_init
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
    def is_secret(self) -> bool:
        return is_secret_type(self.type)

    def with_(self, **changes) -> "HandleValue":
        return replace(self, **changes)


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
