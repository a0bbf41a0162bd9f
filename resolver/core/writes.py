"""Writing identifiers: the Handle.Net operations every front end maps onto.

| operation | REST | Handle protocol | CLI |
|---|---|---|---|
| :meth:`Writes.put` | ``PUT`` (``overwrite``, ``mintNewSuffix``) | create handle (OVRW, MINT) | ``register`` |
| :meth:`Writes.add_values` | ``PUT ?index=`` | add value (OVRW) | |
| :meth:`Writes.modify_values` | | modify value | |
| :meth:`Writes.remove_values` | ``DELETE ?index=`` | remove value | |
| :meth:`Writes.delete` | ``DELETE`` | delete handle | ``delete`` |
| :meth:`Writes.register_batch` | ``POST /api/batch/register`` | | ``import`` |

Each one reads the record with its version, decides (existence, indexes,
permissions from :mod:`.permissions`, read-only values) on what it read, and
writes only if the record is still that version, trying again a few times
when another write came in between; a decision is never made on stale values.

Anonymous callers may not write (RC 402). Values are stamped with the node's
time when written, except unchanged ones, which keep theirs (Handle.Net); the
operator's bulk import keeps the timestamps given (an export imported into
another node stays the same record).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Awaitable, Callable, Sequence

from protocol.codes import RC
from protocol.identifier import Handle, InvalidHandle, parse_handle
from protocol.values import HandleValue
from protocol.valuetypes import AdminPerm
from registry.errors import RecordChanged, RegistryError
from registry.model import ABSENT, HandleRecord, ItemResult, Versioned

from .caller import Caller, Identity
from .errors import Refused, refused
from .permissions import Needed, needed_for_change, same_value

ATTEMPTS = 8            # conditional writes tried before answering "busy"
BACKOFF = 0.002         # seconds: after the n-th conflict, a random pause of up to BACKOFF * 2**n
_DELETE = object()


def _index(value: HandleValue) -> int:
    return value.index


def _unless_same(new: list[HandleValue], old: Sequence[HandleValue]) -> list[HandleValue] | None:
    """``new``, or None (nothing to write) when it is the record as it is."""
    return None if tuple(new) == tuple(old) else new


def check_new_values(values: Sequence[HandleValue]) -> None:
    """Handle.Net's checks of new values: indexes positive and distinct."""
    if type(values) is list or type(values) is tuple:     # the common case at once; any doubt: one by one
        try:
            indexes = [v.index for v in values]
            if len(set(indexes)) == len(indexes) and (not indexes or min(indexes) > 0):
                return
        except (TypeError, AttributeError):
            pass
    seen = set()
    for v in values:
        if v.index <= 0:
            raise Refused(RC.INVALID_VALUE, "value indexes must be positive")
        if v.index in seen:
            raise Refused(RC.VALUE_ALREADY_EXISTS, f"index conflict for {v.index}")
        seen.add(v.index)


class Writes:
    """Mixed into :class:`resolver.core.Core`."""

    # -- the shared steps ---------------------------------------------------------------------
    def require_identity(self, caller: Caller) -> Identity:
        if caller.identity is None:
            raise Refused(RC.AUTHENTICATION_NEEDED, "authentication needed")
        return caller.identity

    def _stamp(self, values: Sequence[HandleValue], old: Sequence[HandleValue] = ()) -> list[HandleValue]:
        """New and changed values get the node's time; unchanged ones keep theirs."""
        now = int(self.clock())
        before = {v.index: v for v in old} if old else None
        out = []
        for v in values:
            o = before.get(v.index) if before else None
            if o is not None and same_value(o, v):
                out.append(o)
            elif v.timestamp == now:
                out.append(v)
            else:
                out.append(HandleValue(v.index, v.type, v.data, v.ttl, v.ttl_absolute, now, v.permissions,
                                       v.references))
        out.sort(key=_index)
        return out

    async def _authorise(self, identity: Identity, handle: Handle, old: Sequence[HandleValue] | None,
                         needed: int, what: str, memo: dict | None = None) -> None:
        if not await self.permissions.allowed(identity, handle, old, needed, memo):
            raise Refused(RC.NOT_AN_ADMIN, f"{identity.actor} may not {what} {handle.text}")

    async def _authorise_change(self, identity: Identity, handle: Handle, old: Sequence[HandleValue],
                                need: Needed, memo: dict | None = None) -> None:
        if need.read_only:
            raise Refused(RC.INSUFFICIENT_PERMISSIONS,
                          f"value {need.read_only[0]} of {handle.text} is read-only (no admin write permission)")
        # Changing nothing still takes the right to change something.
        await self._authorise(identity, handle, old, need.perms or AdminPerm.MODIFY_VALUE, "change", memo)

    async def _conditional(self, handle: Handle, actor: str,
                           decide: Callable[[Versioned], Awaitable[list[HandleValue] | object | None]],
                           operation: str = "handle.replace") -> HandleRecord | None:
        """Read, decide, write only if unchanged; again if another write came in
        between. ``decide`` returns the new values, :data:`_DELETE`, or None
        (nothing to write)."""
        for attempt in range(ATTEMPTS):
            if attempt:      # writers of one record that keep colliding spread out (random, growing pauses)
                await asyncio.sleep(random.uniform(0, BACKOFF * 2 ** attempt))
            try:
                current = await self.store.get_versioned(handle)
                outcome = await decide(current)
                if outcome is None:
                    return current.record
                if outcome is _DELETE:
                    await self.store.delete_handle(handle, actor=actor, expect=current.version)
                    return None
                mode = "create" if current.version == ABSENT else "replace"
                return await self.store.put_handle(handle, outcome, mode=mode, actor=actor,
                                                   expect=current.version, operation=operation)
            except RecordChanged:
                continue
            except RegistryError as exc:
                raise refused(exc) from None
        raise Refused(RC.SERVER_BUSY, f"{handle.text} keeps changing; try again")

    @staticmethod
    def _existing(current: Versioned, handle: Handle) -> HandleRecord:
        if current.record is None:
            raise Refused(RC.HANDLE_NOT_FOUND, f"{handle.text} does not exist")
        return current.record

    # -- operations -----------------------------------------------------------------------------
    async def put(self, caller: Caller, handle: Handle, values: Sequence[HandleValue], *, overwrite: bool,
                  mint: bool = False) -> tuple[HandleRecord, bool]:
        """Create ``handle`` with ``values`` or, with ``overwrite``, replace all
        its values; ``mint`` appends a UUID to the suffix. Returns the record
        and whether it was created."""
        identity = self.require_identity(caller)
        if mint:
            try:
                handle = parse_handle(f"{handle.text}{uuid.uuid4()}")
            except InvalidHandle as exc:
                raise Refused(RC.INVALID_HANDLE, str(exc)) from None
        check_new_values(values)
        created = False

        async def decide(current: Versioned):
            nonlocal created
            old = current.record
            if old is None:
                await self._authorise(identity, handle, None, AdminPerm.ADD_HANDLE, "create")
                created = True
                return self._stamp(values)
            if not overwrite or mint:
                raise Refused(RC.HANDLE_ALREADY_EXISTS, f"{old.handle} already exists")
            await self._authorise_change(identity, handle, old.values,
                                         needed_for_change(old.values, values, removing=True))
            created = False
            return _unless_same(self._stamp(values, old.values), old.values)

        record = await self._conditional(handle, identity.actor, decide)
        return record, created

    async def add_values(self, caller: Caller, handle: Handle, values: Sequence[HandleValue], *,
                         overwrite: bool) -> HandleRecord:
        """Add values to an existing identifier; with ``overwrite`` an index it
        already has is replaced, else refused (RC 201)."""
        def check(old: HandleRecord, have: dict) -> None:
            taken = [v.index for v in values if v.index in have]
            if taken and not overwrite:
                raise Refused(RC.VALUE_ALREADY_EXISTS, f"index conflict for {taken[0]}")

        return await self._set_values(caller, handle, values, check, "handle.add")

    async def modify_values(self, caller: Caller, handle: Handle, values: Sequence[HandleValue]) -> HandleRecord:
        """Replace values at indexes the identifier has (RC 200 for one it lacks)."""
        def check(old: HandleRecord, have: dict) -> None:
            missing = [v.index for v in values if v.index not in have]
            if missing:
                raise Refused(RC.VALUES_NOT_FOUND, f"{old.handle} has no value at index {missing[0]}")

        return await self._set_values(caller, handle, values, check, "handle.modify")

    async def _set_values(self, caller: Caller, handle: Handle, values: Sequence[HandleValue],
                          check: Callable[[HandleRecord, dict], None], operation: str) -> HandleRecord:
        """Values set at their indexes of an existing identifier, the others kept;
        ``check`` refuses what the operation does not allow."""
        identity = self.require_identity(caller)
        if not values:
            raise Refused(RC.INVALID_VALUE, "value list was empty")
        check_new_values(values)

        async def decide(current: Versioned):
            old = self._existing(current, handle)
            have = {v.index: v for v in old.values}
            check(old, have)
            merged = {**have, **{v.index: v for v in values}}
            new = [merged[i] for i in sorted(merged)]
            await self._authorise_change(identity, handle, old.values,
                                         needed_for_change(old.values, new, removing=False))
            return _unless_same(self._stamp(new, old.values), old.values)

        return await self._conditional(handle, identity.actor, decide, operation)

    async def remove_values(self, caller: Caller, handle: Handle, indexes: Sequence[int]) -> HandleRecord:
        """Remove values by index; RC 200 when the identifier lacks any of them."""
        identity = self.require_identity(caller)
        wanted = set(indexes)
        if not wanted:
            raise Refused(RC.VALUES_NOT_FOUND, "no indexes given")

        async def decide(current: Versioned):
            old = self._existing(current, handle)
            have = {v.index for v in old.values}
            missing = sorted(wanted - have)
            if missing:
                raise Refused(RC.VALUES_NOT_FOUND, f"{old.handle} has no value at index {missing[0]}")
            kept = [v for v in old.values if v.index not in wanted]
            need = needed_for_change(old.values, kept, removing=True)
            await self._authorise(identity, handle, old.values, need.perms, "remove values of")
            return kept

        return await self._conditional(handle, identity.actor, decide, "handle.remove_values")

    async def delete(self, caller: Caller, handle: Handle) -> None:
        identity = self.require_identity(caller)

        async def decide(current: Versioned):
            old = self._existing(current, handle)
            await self._authorise(identity, handle, old.values, AdminPerm.DELETE_HANDLE, "delete")
            return _DELETE

        await self._conditional(handle, identity.actor, decide)

    # -- many at once ------------------------------------------------------------------------------
    async def register_batch(self, caller: Caller, items: Sequence[tuple["str | Handle", Sequence[HandleValue]]],
                             *, overwrite: bool) -> list[ItemResult]:
        """Create (or with ``overwrite`` replace) many identifiers, reported per
        item; every item that is valid and permitted is written (one
        transaction on the embedded store). An identifier is text, or a
        Handle its caller has parsed already."""
        identity = self.require_identity(caller)
        results: list[ItemResult | None] = [None] * len(items)
        handles: list[Handle | None] = []
        for i, (text, values) in enumerate(items):
            try:
                handles.append(text if type(text) is Handle else parse_handle(text))
                check_new_values(values)
            except InvalidHandle as exc:
                handles.append(None)
                results[i] = ItemResult(str(text), RC.INVALID_HANDLE, str(exc))
            except Refused as exc:
                results[i] = ItemResult(str(text), exc.code, exc.message)
        todo = [i for i in range(len(items)) if results[i] is None]
        keep_stamps = identity.operator

        def decide(old: tuple[HandleValue, ...] | None, values: list[HandleValue]):
            """For the node admin or operator, in the store's transaction: no
            permission to look up, only the values' own rules."""
            if old is None:
                return list(values) if keep_stamps else self._stamp(values)
            need = needed_for_change(old, values, removing=True)
            if need.read_only:
                return RC.INSUFFICIENT_PERMISSIONS, f"value {need.read_only[0]} is read-only"
            return list(values) if keep_stamps else self._stamp(values, old)

        expect = None
        if identity.node_wide:
            batch = [(handles[i], items[i][1]) for i in todo]
        else:
            try:
                current = await self.store.get_many([handles[i] for i in todo])
            except RegistryError as exc:
                raise refused(exc) from None
            batch, expect, allowed = [], [], []
            memo: dict = {}                 # each prefix's HS_ADMIN values, read once for the batch
            for i in todo:
                h = handles[i]
                got = current[h.key]
                values = items[i][1]
                try:
                    if got.record is None:
                        await self._authorise(identity, h, None, AdminPerm.ADD_HANDLE, "create", memo)
                        new = list(values) if keep_stamps else self._stamp(values)
                    elif not overwrite:
                        raise Refused(RC.HANDLE_ALREADY_EXISTS, f"{got.record.handle} already exists")
                    else:
                        await self._authorise_change(identity, h, got.record.values,
                                                     needed_for_change(got.record.values, values, removing=True),
                                                     memo)
                        new = list(values) if keep_stamps else self._stamp(values, got.record.values)
                except Refused as exc:
                    results[i] = ItemResult(h.text, exc.code, exc.message)
                    continue
                allowed.append(i)
                batch.append((h, new))
                expect.append(got.version)
            todo = allowed
        if batch:
            try:
                outcomes = await self.store.register_batch(batch, overwrite=overwrite, actor=identity.actor,
                                                           expect=expect,
                                                           decide=decide if identity.node_wide else None)
            except RegistryError as exc:
                raise refused(exc) from None
            for i, outcome in zip(todo, outcomes):
                results[i] = outcome
        return results  # type: ignore[return-value]
