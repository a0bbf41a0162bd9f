"""Which values a caller may read, and which values a request's filters name.

* Secret values (``protocol.values.is_secret_type``: ``HS_SECKEY`` and its
  subtypes, in any case) are never returned, to anyone, by any front end.
* A public-read value is returned to anyone; an admin-read value only to a
  caller the permissions allow to read (READ_VALUE, see :mod:`.permissions`).
* Filters follow Handle.Net's server: with no index and no type every value
  is named; otherwise a value is named when its index is asked for OR its
  type is (a type also names its subtypes, ``URL`` names ``URL.x``, ignoring
  ASCII case).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from protocol.values import HandleValue, Perm, public_values
from protocol.valuetypes import has_type

_PUBLIC = int(Perm.PUBLIC_READ)
_ADMIN = int(Perm.ADMIN_READ)


def readable(values: Iterable[HandleValue], *, admin: bool = False) -> tuple[HandleValue, ...]:
    """The values a reader may see (an ``admin`` may read admin-read ones too)."""
    if not admin:
        return public_values(values)
    return tuple(v for v in values if not v.is_secret and v.permissions & (_PUBLIC | _ADMIN))


def needs_admin(values: Iterable[HandleValue]) -> bool:
    """Whether an admin would see more of these values than anyone else."""
    return any(not v.permissions & _PUBLIC and v.permissions & _ADMIN and not v.is_secret for v in values)


def select(values: Sequence[HandleValue], indexes: Sequence[int], types: Sequence[str]) -> list[HandleValue]:
    """The values the filters name (see the module docstring)."""
    if not indexes and not types:
        return list(values)
    wanted = set(indexes)
    return [v for v in values if v.index in wanted or any(has_type(v.type, t) for t in types)]
