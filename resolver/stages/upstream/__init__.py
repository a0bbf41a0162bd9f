"""The upstream stage: what a registry miss means in the hierarchy (see README.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from protocol.identifier import handle_key
from registry.model import ENABLED
from registry.store import Store
from registry.validation import NODE_PREFIX_KEY

from ...cache import NOT_HERE, REFERRED, Entry
from ...query import Query

WHERE_TYPES = ("HS_SITE", "HS_SERV")          # the values of a prefix record that say where its prefix is served
_OUTCOMES = ("referred", "not_here", "not_found")


class UpstreamStage:
    name = "upstream"

    def __init__(self, store: Store, registry: CollectorRegistry) -> None:
        self._store = store
        answers = Counter("idnode_upstream_misses_total",
                          "Registry misses, by what they meant: referred (a delegated prefix), not_here (a prefix "
                          "not homed on this node), not_found.", ("outcome",), registry=registry)
        self._counts = {o: answers.labels(o) for o in _OUTCOMES}
        self._own = NODE_PREFIX_KEY               # the node's own prefix key, read at start
        self.next = None                          # the last stage
        if not store.reads_inline:
            self.resolve_now = None               # type: ignore[assignment]

    async def start(self) -> None:
        self._own = handle_key(await self._store.secondary_prefix())

    async def stop(self) -> None:
        pass

    def _mine(self, prefix_key: str) -> bool:
        """The node's own namespaces: ``0.NA`` and its secondary prefix, where a miss is just a miss."""
        return prefix_key == NODE_PREFIX_KEY or prefix_key == self._own

    def _meaning(self, query: Query, state: str | None, prefix_record) -> Entry:
        key = query.handle.key
        if state is None:
            self._counts["not_here"].inc()
            return Entry.elsewhere(key, NOT_HERE)
        if state == ENABLED and prefix_record is not None and any(v.type in WHERE_TYPES
                                                                  for v in prefix_record.values):
            self._counts["referred"].inc()
            return Entry.elsewhere(key, REFERRED, prefix_record)
        self._counts["not_found"].inc()
        return Entry(key, None)

    async def resolve(self, query: Query) -> Entry:
        prefix_key = query.handle.prefix_key
        if self._mine(prefix_key):
            self._counts["not_found"].inc()
            return Entry(query.handle.key, None)
        state, record = await self._store.home(prefix_key)
        return self._meaning(query, state, record)

    def resolve_now(self, query: Query) -> Entry:
        """:meth:`resolve` without awaiting, for a store that reads inline."""
        prefix_key = query.handle.prefix_key
        if self._mine(prefix_key):
            self._counts["not_found"].inc()
            return Entry(query.handle.key, None)
        state, record = self._store.home_now(prefix_key)
        return self._meaning(query, state, record)

