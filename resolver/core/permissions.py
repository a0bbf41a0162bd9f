"""Who may do what: the Handle.Net model, with the node admin on top.

An identity may act on an identifier with the AdminPerm bits an operation
needs (RFC 3652 section 3.5, Handle.Net ``HandleServer.authenticateUser``)
when:

1. it is node-wide (the node admin ``300:0.NA/<secondary>`` or the CLI's
   operator): every permission under every prefix; else
2. the identifier is not under ``0.NA`` (the node's own identifiers are the
   node admin's alone, but for the prefix records ``0.NA/<Q>`` of the
   prefixes Q under an enterprise prefix P allocated here, which P's own
   admin keeps: a secondary node publishing its enterprise prefixes to the
   top-level node that allocated its prefix), and an HS_ADMIN value with every needed bit names the
   identity, directly or through HS_VLIST groups, either on the identifier
   itself (so a partner named there may act on it) or on its prefix. The
   prefix's HS_ADMIN values are those of ``0.NA/<prefix>`` when the node holds
   that identifier, else those of the provisioned ``<prefix>/ADMIN`` (whose
   index 100 names its own identity with every permission), so an
   enterprise's admin administers everything under its prefix.

Value permission bits come on top: a value without admin write is
read-only to everyone (it may be removed, never changed; Handle.Net's
modify rule, applied here to every way of changing a value), and values
that stay equal (timestamps aside) need no permission at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from protocol.identifier import Handle, handle_key
from protocol.values import HandleValue, Perm, Reference
from protocol.valuetypes import AdminPerm, AdminRef, VList, WireError, has_type
from registry import provision
from registry.errors import RegistryError, StoreUnavailable
from registry.store import HandleStore

from .caller import NA_PREFIX, Identity
from .errors import refused

MAX_GROUP_LOOKUPS = 32     # HS_VLIST values followed for one check
_NA_KEY = handle_key(NA_PREFIX)


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


class Permissions:
    """Permission checks against the registry (HS_ADMIN values, HS_VLIST groups)."""

    def __init__(self, store: HandleStore) -> None:
        self._store = store

    async def _named(self, identity: Identity, refs: list[Reference]) -> bool:
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
                record = await self._store.get_handle(ref.handle)
            except StoreUnavailable as exc:  # the store is away: no verdict (RC 3)
                raise refused(exc) from None
            except RegistryError:            # a malformed reference names nobody
                continue
            for v in record.values if record else ():
                if v.index == ref.index and has_type(v.type, "HS_VLIST"):
                    try:
                        queue.extend(VList.decode(v.data).refs)
                    except WireError:
                        pass
        return False

    async def prefix_admin_values(self, prefix: str, memo: dict | None = None) -> tuple[HandleValue, ...]:
        """The HS_ADMIN values that govern ``prefix`` (see the module docstring);
        ``memo`` keeps them for the other checks of one request (a batch)."""
        if memo is not None:
            key = handle_key(prefix)
            if key not in memo:
                memo[key] = await self.prefix_admin_values(prefix)
            return memo[key]
        for handle in (f"{NA_PREFIX}/{prefix}", provision.prefix_admin_handle(prefix)):
            record = await self._store.get_handle(handle)
            admins = tuple(v for v in record.values if is_admin_value(v)) if record else ()
            if admins:
                return admins
        return ()

    async def allowed(self, identity: Identity | None, handle: Handle, values: Sequence[HandleValue] | None,
                      needed: int, memo: dict | None = None) -> bool:
        """Whether ``identity`` may act with the ``needed`` AdminPerm bits on
        ``handle`` whose current values are ``values`` (None: it does not
        exist yet). Nobody (``identity`` None) may do anything. ``memo``: see
        :meth:`prefix_admin_values`."""
        if identity is None:
            return False
        if identity.node_wide:
            return True
        if handle.prefix_key == _NA_KEY:
            return identity.scope is not None and provision.is_under(handle.suffix, identity.scope)
        if values and await self._named(identity, _admin_refs(values, needed)):
            return True
        return await self._named(identity, _admin_refs(await self.prefix_admin_values(handle.prefix, memo), needed))

    async def allowed_on_prefix(self, identity: Identity | None, prefix: str, needed: int) -> bool:
        """Like :meth:`allowed`, for an operation on a whole prefix (list handles)."""
        if identity is None:
            return False
        if identity.node_wide:
            return True
        return await self._named(identity, _admin_refs(await self.prefix_admin_values(prefix), needed))


# ------------------------------------------------------------------ what a change needs

@dataclass(frozen=True, slots=True)
class Needed:
    """What changing ``old`` values into ``new`` ones asks of the caller."""
    perms: int                      # AdminPerm bits (0: nothing to check)
    read_only: tuple[int, ...]      # indexes of read-only values the change would alter


def same_value(a: HandleValue, b: HandleValue) -> bool:
    """Equal ignoring the timestamp (Handle.Net ``equalsIgnoreTimestamp``)."""
    return (a.index == b.index and a.data == b.data and a.type == b.type and a.permissions == b.permissions
            and a.ttl == b.ttl and a.ttl_absolute == b.ttl_absolute and a.references == b.references)


def needed_for_change(old: Sequence[HandleValue], new: Sequence[HandleValue], *, removing: bool) -> Needed:
    """The permissions a change from ``old`` to ``new`` needs, as Handle.Net
    decides them for add/modify/remove value and create-with-overwrite:
    values only in ``new`` need ADD_VALUE (ADD_ADMIN for HS_ADMIN), values
    only in ``old`` (when ``removing``) REMOVE_VALUE (REMOVE_ADMIN), changed
    ones MODIFY_VALUE / MODIFY_ADMIN and the mixes between them; a changed
    publicly writable value needs no MODIFY_VALUE; unchanged values nothing."""
    before = {v.index: v for v in old}
    after = {v.index: v for v in new}
    need, read_only = 0, []
    for index, n in after.items():
        o = before.get(index)
        if o is None:
            need |= AdminPerm.ADD_ADMIN if is_admin_value(n) else AdminPerm.ADD_VALUE
            continue
        if same_value(o, n):
            continue
        if not o.permissions & Perm.ADMIN_WRITE:
            read_only.append(index)
        was, becomes = is_admin_value(o), is_admin_value(n)
        if was and becomes:
            need |= AdminPerm.MODIFY_ADMIN
        elif was:
            need |= AdminPerm.REMOVE_ADMIN | AdminPerm.MODIFY_VALUE
        elif becomes:
            need |= AdminPerm.MODIFY_VALUE | AdminPerm.ADD_ADMIN
        elif not o.permissions & Perm.PUBLIC_WRITE:
            need |= AdminPerm.MODIFY_VALUE
    if removing:
        for index, o in before.items():
            if index not in after:
                need |= AdminPerm.REMOVE_ADMIN if is_admin_value(o) else AdminPerm.REMOVE_VALUE
    return Needed(int(need), tuple(sorted(read_only)))
