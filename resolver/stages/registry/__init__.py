"""The registry stage: the end of the chain, one read of the store (see README.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from registry.errors import StoreUnavailable
from registry.store import HandleStore

from ...cache import Entry
from ...query import Query


class RegistryStage:
    name = "registry"

    def __init__(self, store: HandleStore, registry: CollectorRegistry) -> None:
        self._store = store
        self._unavailable = Counter("idnode_registry_unavailable_total",
                                    "Resolutions the registry could not answer (busy, down).", registry=registry)
        self._waiting = Gauge("idnode_registry_reads_waiting",
                              "Reads sent to the store and not answered yet (bounded by store.max_reads_waiting).",
                              registry=registry, multiprocess_mode="livesum")
        self.next = None                      # the upstream stage, for misses (set by the pipeline)
        self.next_now = None
        if not store.reads_inline:
            self.resolve_now = None           # type: ignore[assignment]  # a miss must await this store

    def collect(self) -> None:
        self._waiting.set(self._store.reads_waiting())

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def resolve(self, query: Query) -> Entry:
        try:
            record = await self._store.get_handle(query.handle)
        except StoreUnavailable:
            self._unavailable.inc()
            raise
        if record is None and self.next is not None:
            return await self.next(query)          # what the miss means (the upstream stage)
        return Entry(query.handle.key, record)

    def resolve_now(self, query: Query) -> Entry:
        """:meth:`resolve` without awaiting, for a store that reads inline (None otherwise)."""
        try:
            record = self._store.get_handle_now(query.handle)
        except StoreUnavailable:
            self._unavailable.inc()
            raise
        if record is None and self.next_now is not None:
            return self.next_now(query)
        return Entry(query.handle.key, record)
