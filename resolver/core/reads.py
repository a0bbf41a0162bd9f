"""Reading: resolution (one identifier or a batch) and listing a prefix."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.codes import RC
from protocol.identifier import InvalidHandle, parse_prefix
from protocol.values import HandleValue
from protocol.valuetypes import AdminPerm
from registry.errors import RegistryError
from registry.model import Page
from registry.provision import WHERE_TYPES

from ..cache import DISABLED, FOUND, NOT_HERE, REFERRED, Entry
from ..query import Query
from .caller import Caller
from .errors import Refused, refused
from .visibility import needs_admin, readable, select

NOT_FOUND = "handle not found"
ELSEWHERE = frozenset({RC.HANDLE_NOT_FOUND, RC.SERVICE_REFERRAL, RC.SERVER_NOT_RESPONSIBLE})
_OTHER_NODES = frozenset({REFERRED, NOT_HERE})     # entries another node may answer for
_NO_VALUES = bytes(4)            # an encoded value list of none: public_view answers VALUES_NOT_FOUND


@dataclass(frozen=True, slots=True)
class View:
    """What a caller gets for a resolution: ``code`` is RC.SUCCESS (``values``
    non-empty), RC.HANDLE_NOT_FOUND (unknown, or its prefix is disabled:
    ``message`` says which), RC.VALUES_NOT_FOUND (nothing the caller may
    see matches), RC.SERVICE_REFERRAL (its prefix is delegated: ``values``
    are the HS_SITE or HS_SERV of the prefix record ``referral``) or
    RC.SERVER_NOT_RESPONSIBLE (its prefix is not homed here). ``handle`` is the identifier as registered when it exists,
    else as asked."""

    code: int
    handle: str
    values: tuple[HandleValue, ...] = ()
    message: str = ""
    referral: str = ""           # RC 302: the prefix record whose ``values`` (HS_SITE, HS_SERV) say where to ask
    authoritative: bool = True   # False: another node's answer, resolved for the caller (Handle AT cleared)

    @property
    def found(self) -> bool:
        return self.code == RC.SUCCESS

    @property
    def elsewhere(self) -> bool:
        """Not served here: unknown, its prefix disabled, delegated (a referral) or homed elsewhere."""
        return self.code in ELSEWHERE


def _unserved(entry: Entry, asked: str) -> View:
    if entry.status == REFERRED:
        where = tuple(v for v in entry.record.values if v.type in WHERE_TYPES)
        return View(RC.SERVICE_REFERRAL, asked, where, f"{asked or entry.key} is served by its prefix's own node: "
                    f"see {entry.record.handle}", entry.record.handle)
    if entry.status == NOT_HERE:         # (a memoised rendering is asked for no spelling: the key names it)
        return View(RC.SERVER_NOT_RESPONSIBLE, asked, (),
                    f"prefix {(asked or entry.key).partition('/')[0]} is not served by this node")
    if entry.status == DISABLED:
        prefix = entry.handle.partition("/")[0]
        return View(RC.HANDLE_NOT_FOUND, asked, (), f"prefix {prefix} is disabled: its identifiers are not served")
    return View(RC.HANDLE_NOT_FOUND, asked, (), NOT_FOUND)


def public_view(entry: Entry, asked: str) -> View:
    """The view of an anonymous, unfiltered request (front ends memoise their
    renderings of it in the entry)."""
    if entry.status != FOUND:
        return _unserved(entry, asked)
    values = readable(entry.record.values)
    if not values:
        return View(RC.VALUES_NOT_FOUND, entry.handle, (), "no values anyone may read")
    return View(RC.SUCCESS, entry.handle, values)


def public_ready(entry: Entry) -> bytes | None:
    """The values of :func:`public_view` as the registry keeps them ready for a
    Handle reply (``registry.codec.ready_values``, made with the same rule),
    when the identifier is served, the registry has them and there is at least
    one; else None, and a front end renders :func:`public_view`."""
    if entry.status != FOUND:
        return None
    ready = entry.record.ready
    return ready if ready is not None and ready != _NO_VALUES else None


class Reads:
    """Mixed into :class:`resolver.core.Core`."""

    public_view = staticmethod(public_view)

    async def view(self, entry: Entry, query: Query) -> View:
        """What ``query``'s caller may see of ``entry`` through its filters;
        for an identifier served elsewhere, the other node's answer when the
        caller asked for recursion and may have it (:mod:`.recursion`)."""
        if entry.status != FOUND:
            if query.recursion and entry.status in _OTHER_NODES and self.recursion is not None:
                return await self._recursive(entry, query)
            return _unserved(entry, query.handle.text)
        record = entry.record
        values = select(record.values, query.indexes, query.types)
        admin = False
        caller = query.caller
        if caller is not None and caller.identity is not None and needs_admin(values):
            admin = await self.permissions.allowed(caller.identity, query.handle, record.values,
                                                   AdminPerm.READ_VALUE)
        visible = readable(values, admin=admin)
        if not visible:
            return View(RC.VALUES_NOT_FOUND, record.handle, (), "no values match" if query.indexes or query.types
                        else "no values this caller may read")
        return View(RC.SUCCESS, record.handle, visible)

    async def _recursive(self, entry: Entry, query: Query) -> View:
        upstream = self.pipeline.upstream
        if not self.recursion.allows(query.caller, query.hops):
            if self.recursion.on:
                upstream.recursion.counted("refused")
            return _unserved(entry, query.handle.text)
        try:
            found = await upstream.recurse(query, entry)
        except RegistryError as exc:
            raise refused(exc) from None
        if found.code == RC.SUCCESS:
            values = readable(select(found.values, query.indexes, query.types))
            if not values:
                return View(RC.VALUES_NOT_FOUND, found.handle, (), "no values match", authoritative=False)
            return View(RC.SUCCESS, found.handle, values, authoritative=False)
        if found.code in ELSEWHERE or found.code in (RC.VALUES_NOT_FOUND, RC.INVALID_HANDLE):
            return View(found.code, query.handle.text, (), found.message, authoritative=False)
        raise Refused(found.code, found.message)

    async def entry(self, query: Query) -> Entry:
        """The pipeline's entry for ``query`` (one lookup)."""
        found = self.pipeline.lookup(query)
        if type(found) is Entry:
            return found
        try:
            return await found
        except RegistryError as exc:
            raise refused(exc) from None

    def entry_now(self, query: Query) -> Entry:
        """:meth:`entry` without awaiting; only when the pipeline ``reads_inline``."""
        try:
            return self.pipeline.lookup_now(query)
        except RegistryError as exc:
            raise refused(exc) from None

    async def resolve(self, query: Query) -> View:
        return await self.view(await self.entry(query), query)

    async def list_handles(self, caller: Caller, prefix: str, *, cursor: str | None, limit: int) -> Page:
        """A page of the identifiers under ``prefix`` (LIST_HANDLES permission)."""
        try:
            prefix = parse_prefix(prefix)
        except InvalidHandle as exc:
            raise Refused(RC.INVALID_HANDLE, str(exc)) from None
        self.require_identity(caller)
        try:
            if await self.store.get_prefix(prefix) is None:
                raise Refused(RC.SERVER_NOT_RESPONSIBLE, f"prefix {prefix} is not allocated on this node")
            if not await self.permissions.allowed_on_prefix(caller.identity, prefix, AdminPerm.LIST_HANDLES):
                raise Refused(RC.NOT_AN_ADMIN, f"{caller.identity.actor} may not list the identifiers of {prefix}")
            return await self.store.list_handles(prefix, cursor=cursor, limit=limit)
        except RegistryError as exc:
            raise refused(exc) from None

