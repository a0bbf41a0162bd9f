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

    def _candidates(self, prefix_key: str) -> list[str]:
        """The prefixes a miss under ``prefix_key`` is answered by, nearest first:
        itself, then its ancestors down to (not including) the node's own prefix
        (a delegated 88.118 answers for 88.118.8 too: the enterprise node there
        homes its sub-prefixes). None at all for the node's own namespaces
        (``0.NA``, its own prefix), where a miss is just a miss."""
        own = self._own
        if prefix_key == NODE_PREFIX_KEY or prefix_key == own:
            return []
        out = [prefix_key]
        if prefix_key.startswith(own + "."):
            parts = prefix_key.split(".")
            out += [".".join(parts[:n]) for n in range(len(parts) - 1, own.count(".") + 1, -1)]
        return out

    def _meaning(self, query: Query, at: str | None, state: str | None, prefix_record) -> Entry:
        """``at``: the prefix that was found allocated here (None: none was)."""
        key = query.handle.key
        if at is None:
            self._counts["not_here"].inc()
            return Entry.elsewhere(key, NOT_HERE)
        if state == ENABLED and prefix_record is not None and any(v.type in WHERE_TYPES
                                                                  for v in prefix_record.values):
            self._counts["referred"].inc()
            return Entry.elsewhere(key, REFERRED, prefix_record)
        if at != query.handle.prefix_key:          # a sub-prefix of one homed here, never allocated
            self._counts["not_here"].inc()
            return Entry.elsewhere(key, NOT_HERE)
        self._counts["not_found"].inc()
        return Entry(key, None)

    async def resolve(self, query: Query) -> Entry:
        for prefix_key in self._candidates(query.handle.prefix_key):
            state, record = await self._store.home(prefix_key)
            if state is not None:
                return self._meaning(query, prefix_key, state, record)
        return self._end(query)

    def resolve_now(self, query: Query) -> Entry:
        """:meth:`resolve` without awaiting, for a store that reads inline."""
        for prefix_key in self._candidates(query.handle.prefix_key):
            state, record = self._store.home_now(prefix_key)
            if state is not None:
                return self._meaning(query, prefix_key, state, record)
        return self._end(query)

    def _end(self, query: Query) -> Entry:
        """No prefix homed here answers for it: a miss in the node's own namespaces, else not ours."""
        if query.handle.prefix_key in (NODE_PREFIX_KEY, self._own):
            self._counts["not_found"].inc()
            return Entry(query.handle.key, None)
        return self._meaning(query, None, None, None)
