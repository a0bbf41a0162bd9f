"""Who may do what: authenticated identities and HS_ADMIN permissions.

An :class:`Identity` is the ``index:handle`` that answered a challenge. Two
rules decide whether it may act on a handle (RFC 3652 section 3.5, Handle.Net
``HandleServer.authenticateUser``, and the node's own scope rule):

1. scope: the node admin (``300:0.NA/<secondary>``) acts anywhere; any other
   identity only under its own prefix (the prefix its admin row names, else
   its handle's prefix; ``0.NA/X`` counts as prefix ``X``). Handles under
   ``0.NA`` are the node admin's alone.
2. HS_ADMIN: an HS_ADMIN value with every needed permission bit names the
   identity, directly or through HS_VLIST groups, either on the handle itself
   or on its prefix. The prefix's HS_ADMIN values are those of ``0.NA/<prefix>``
   when the node holds that handle, else those of the provisioned
   ``<prefix>/ADMIN`` (whose index 100 grants its own identity everything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from protocol.identifier import handle_key
from protocol.values import HandleValue, Reference
from protocol.valuetypes import AdminPerm, AdminRef, VList, WireError, has_type
from registry import provision
from registry.errors import RegistryError
from registry.store import Store

NA_PREFIX = "0.NA"
MAX_GROUP_LOOKUPS = 32     # HS_VLIST values followed for one check


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated ``index:handle``; ``scope`` is the prefix it
    administers, None for the node admin."""

    handle: str
    index: int
    scope: str | None

    @property
    def actor(self) -> str:
        """The name the audit log records (as the REST API does)."""
        return f"{self.index}:{self.handle}"

    @property
    def is_node_admin(self) -> bool:
        return self.scope is None

    def may_admin(self, prefix: str) -> bool:
        return self.scope is None or handle_key(self.scope) == handle_key(prefix)

    def is_named_by(self, ref: Reference) -> bool:
        """Handle.Net ``ValueReference.isMatchedBy``: index 0 names every index."""
        return handle_key(ref.handle) == handle_key(self.handle) and ref.index in (0, self.index)


def scope_of(handle: str) -> str:
    """The prefix an identity without an admin row administers."""
    prefix, _, suffix = handle.partition("/")
    return suffix if handle_key(prefix) == handle_key(NA_PREFIX) else prefix


def is_admin_value(value: HandleValue) -> bool:
    return has_type(value.type, "HS_ADMIN")


def _admin_refs(values: Iterable[HandleValue], needed: int) -> list[Reference]:
    out = []
    for v in values:
        if not is_admin_value(v):
            continue
        try:
            ref = AdminRef.decode(v.data)
        except WireError:
            continue                      # a damaged HS_ADMIN grants nothing
        if ref.permissions & needed == needed:
            out.append(Reference(ref.handle, ref.index))
    return out


async def _named(store: Store, identity: Identity, refs: list[Reference]) -> bool:
    """Whether ``refs`` name ``identity``, directly or through HS_VLIST groups."""
    queue, seen, lookups = list(refs), set(), 0
    while queue:
        ref = queue.pop(0)
        if identity.is_named_by(ref):
            return True
        key = (handle_key(ref.handle), ref.index)
        if key in seen or ref.index == 0 or lookups >= MAX_GROUP_LOOKUPS:
            continue
        seen.add(key)
        lookups += 1
        try:
            record = await store.get_handle(ref.handle)
        except RegistryError:            # a malformed reference names nobody
            continue
        for v in record.values if record else ():
            if v.index == ref.index and has_type(v.type, "HS_VLIST"):
                try:
                    queue.extend(VList.decode(v.data).refs)
                except WireError:
                    pass
    return False


async def prefix_admin_values(store: Store, prefix: str) -> tuple[HandleValue, ...]:
    """The HS_ADMIN values that govern ``prefix`` (see the module docstring)."""
    for handle in (f"{NA_PREFIX}/{prefix}", provision.prefix_admin_handle(prefix)):
        record = await store.get_handle(handle)
        admins = tuple(v for v in record.values if is_admin_value(v)) if record else ()
        if admins:
            return admins
    return ()


async def allowed(store: Store, identity: Identity, prefix: str, values: Sequence[HandleValue] | None,
                  needed: int) -> bool:
    """Whether ``identity`` may act with the ``needed`` AdminPerm bits on a
    handle under ``prefix`` whose current values are ``values`` (None for a
    handle that does not exist yet)."""
    if not identity.may_admin(prefix):
        return False
    if identity.is_node_admin:
        return True
    if values and await _named(store, identity, _admin_refs(values, needed)):
        return True
    return await _named(store, identity, _admin_refs(await prefix_admin_values(store, prefix), needed))


# ------------------------------------------------------------------ permissions an operation needs

def add_perms(values: Iterable[HandleValue]) -> int:
    """Adding values: ADD_ADMIN for HS_ADMIN values, ADD_VALUE for the rest."""
    need = 0
    for v in values:
        need |= AdminPerm.ADD_ADMIN if is_admin_value(v) else AdminPerm.ADD_VALUE
    return need


def remove_perms(values: Iterable[HandleValue]) -> int:
    need = 0
    for v in values:
        need |= AdminPerm.REMOVE_ADMIN if is_admin_value(v) else AdminPerm.REMOVE_VALUE
    return need


def modify_perms(pairs: Iterable[tuple[HandleValue, HandleValue]]) -> int:
    """Modifying (old, new) pairs, as Handle.Net ``doModifyValue`` decides."""
    need = 0
    for old, new in pairs:
        was, becomes = is_admin_value(old), is_admin_value(new)
        if was and becomes:
            need |= AdminPerm.MODIFY_ADMIN
        elif was:
            need |= AdminPerm.REMOVE_ADMIN | AdminPerm.MODIFY_VALUE
        elif becomes:
            need |= AdminPerm.MODIFY_VALUE | AdminPerm.ADD_ADMIN
        else:
            need |= AdminPerm.MODIFY_VALUE
    return need
