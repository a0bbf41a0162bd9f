"""The upstream stage: what a registry miss means in the hierarchy (see README.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from protocol.identifier import handle_key
from protocol.values import HandleValue
from registry.model import ENABLED, HandleRecord
from registry.provision import SITE_INDEX, WHERE_TYPES, prefix_record_values
from registry.store import Store
from registry.validation import NODE_PREFIX_KEY

from ...cache import NOT_HERE, REFERRED, Entry
from ...query import Query
from ...settings import CacheSettings, UpstreamSettings
from .recursion import Recursed, Recursion

_OUTCOMES = ("referred", "not_here", "not_found", "prefix_record")
_RECORDS = NODE_PREFIX_KEY + "/"


def _points(prefix_record: HandleRecord | None) -> bool:
    """Whether a prefix record says where its prefix is served (a delegation
    here, or a record a node under this one published: registry.outbox)."""
    return prefix_record is not None and any(v.type in WHERE_TYPES for v in prefix_record.values)


class UpstreamStage:
    name = "upstream"

    def __init__(self, store: Store, registry: CollectorRegistry, settings: UpstreamSettings = UpstreamSettings(),
                 cache: CacheSettings = CacheSettings()) -> None:
        self._store = store
        self.recursion = Recursion(settings, cache, registry)
        answers = Counter("idnode_upstream_misses_total",
                          "Registry misses, by what they meant: referred (a delegated prefix), not_here (a prefix "
                          "not homed on this node), not_found, prefix_record (the record of a prefix homed here, "
                          "made from this node's site).", ("outcome",), registry=registry)
        self._counts = {o: answers.labels(o) for o in _OUTCOMES}
        self._own = NODE_PREFIX_KEY               # the node's own prefix key, read at start
        self._own_text = ""                       # the same as registered
        self._site: bytes | None = None           # this node's HS_SITE, once its ports are known
        self.next = None                          # the last stage
        if not store.reads_inline:
            self.resolve_now = None               # type: ignore[assignment]

    async def start(self) -> None:
        own = await self._store.secondary_prefix()
        self._own, self._own_text = handle_key(own), own

    async def stop(self) -> None:
        pass

    def collect(self) -> None:
        self.recursion.collect()

    async def recurse(self, query: Query, entry: Entry) -> Recursed:
        """``query`` resolved elsewhere for its client: ``entry`` is this
        node's answer (REFERRED or NOT_HERE), which says where to start. The
        caller decided that the client may have the node recurse."""
        return await self.recursion.resolve(query, entry, self._store.get_handle)

    def advertise(self, site: bytes) -> None:
        """This node's encoded HS_SITE: the prefix records it makes point here."""
        self._site = site

    # -- what to read ------------------------------------------------------------------------------
    def _target(self, query: Query) -> tuple[str, bool]:
        """(the prefix a miss is about, whether the miss is of that prefix's record ``0.NA/<prefix>``)."""
        key = query.handle.key
        if key.startswith(_RECORDS):
            return key[len(_RECORDS):], True
        return query.handle.prefix_key, False

    def _candidates(self, prefix_key: str) -> list[str]:
        """The prefixes a miss about ``prefix_key`` is answered by, nearest
        first: itself and, under the node's own prefix, its parents down to
        (not including) the node's own (a delegated 88.118 answers for 88.118.8
        too: the node it went to homes its sub-prefixes). None for the node's
        own namespaces (``0.NA``, its own prefix) nor for others' prefixes."""
        own = self._own
        if not prefix_key.startswith(own + "."):
            return []
        parts = prefix_key.split(".")
        return [".".join(parts[:n]) for n in range(len(parts), own.count(".") + 1, -1)]

    async def resolve(self, query: Query) -> Entry:
        target, record = self._target(query)
        for prefix_key in self._candidates(target):
            state, prefix_record = await self._store.home(prefix_key)
            if state is not None or _points(prefix_record):
                return self._meaning(query, target, record, prefix_key, state or ENABLED, prefix_record)
        return self._nowhere(query, target, record)

    def resolve_now(self, query: Query) -> Entry:
        """:meth:`resolve` without awaiting, for a store that reads inline."""
        target, record = self._target(query)
        for prefix_key in self._candidates(target):
            state, prefix_record = self._store.home_now(prefix_key)
            if state is not None or _points(prefix_record):
                return self._meaning(query, target, record, prefix_key, state or ENABLED, prefix_record)
        return self._nowhere(query, target, record)

    # -- what it means -----------------------------------------------------------------------------
    def _meaning(self, query: Query, target: str, record: bool, at: str, state: str,
                 prefix_record: HandleRecord | None) -> Entry:
        """The miss about ``target`` (its ``record``, or an identifier under
        it), ``at`` being the nearest prefix allocated here, in ``state``,
        with its prefix record."""
        key = query.handle.key
        if state == ENABLED and prefix_record is not None and any(v.type in WHERE_TYPES
                                                                  for v in prefix_record.values):
            self._counts["referred"].inc()
            return Entry.elsewhere(key, REFERRED, prefix_record)
        if at == target and record and state == ENABLED and self._site is not None:
            self._counts["prefix_record"].inc()
            return Entry(key, self._prefix_record(query.handle.text))
        if at != target and not record:          # a sub-prefix of one homed here, never allocated
            self._counts["not_here"].inc()
            return Entry.elsewhere(key, NOT_HERE)
        self._counts["not_found"].inc()
        return Entry(key, None)

    def _nowhere(self, query: Query, target: str, record: bool) -> Entry:
        """No prefix homed here answers for ``target``: a miss under the node's
        own prefix, or of a record under ``0.NA`` for a prefix in its
        namespace, is just a miss; anything else is another node's."""
        if target == self._own or (record and target.startswith(self._own + ".")):
            self._counts["not_found"].inc()
            return Entry(query.handle.key, None)
        self._counts["not_here"].inc()
        return Entry.elsewhere(query.handle.key, NOT_HERE)

    def _prefix_record(self, handle: str) -> HandleRecord:
        """The record of a prefix homed here and not delegated: this node's
        HS_SITE, and an HS_ADMIN naming the node admin (as a Handle.Net prefix
        record reads)."""
        return HandleRecord(handle, tuple(prefix_record_values(HandleValue(SITE_INDEX, "HS_SITE", self._site),
                                                               self._own_text)))
