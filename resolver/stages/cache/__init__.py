"""The cache stage: answers from :class:`resolver.cache.Cache`, fills it from
the stages after it, and keeps it true to every write (see README.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from protocol.identifier import InvalidHandle, handle_key, parse_handle
from registry import errors as reg
from registry.model import Changes
from registry.store import ChangeFeed

from ...cache import FOUND, Cache, Entry, record_ttl
from ...query import Query
from ...settings import CacheSettings
from ...shared import SharedState, slot_of

log = logging.getLogger("idnode.cache")


class CacheMetrics:
    """The stage's counters; sizes are read at scrape time (:meth:`CacheStage.collect`)."""

    def __init__(self, registry: CollectorRegistry):
        def counter(name: str, doc: str) -> Counter:
            return Counter(f"idnode_cache_{name}", doc, registry=registry)

        self.hits = counter("hits_total", "Answers served from the cache.")
        self.negative_hits = counter("negative_hits_total", "Not-found answers served from the cache.")
        self.misses = counter("misses_total", "Lookups the cache could not answer.")
        self.evictions = counter("evictions_total", "Entries evicted to respect the bounds.")
        self.coalesced = counter("coalesced_misses_total", "Misses that waited for another's registry read.")
        self.stale_served = counter("stale_served_total", "Expired answers served while the registry was unavailable.")
        self.prefetches = counter("prefetches_total", "Popular entries refreshed before expiry.")
        self.invalidations = counter("invalidations_total", "Entries dropped because a write changed them.")
        self.entries = Gauge("idnode_cache_entries", "Entries in the cache (read at scrape time).",
                             registry=registry, multiprocess_mode="livesum")
        self.bytes = Gauge("idnode_cache_bytes", "Estimated bytes held by the cache (read at scrape time).",
                           registry=registry, multiprocess_mode="livesum")


class CacheStage:
    name = "cache"

    def __init__(self, settings: CacheSettings, shared: SharedState, feed: ChangeFeed, registry: CollectorRegistry,
                 *, poll_interval: float, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.settings = settings
        self.metrics = CacheMetrics(registry)
        self._shared = shared
        self._stamps = shared.stamps
        self._feed = feed
        self._poll_interval = poll_interval
        self._clock = clock
        self._wall = wall
        self.cache = Cache(settings, clock, shared.stamps, on_evict=self.metrics.evictions.inc,
                           on_due=self._prefetch) if settings.enabled else None
        self._inflight: dict[str, asyncio.Future] = {}
        self.missed = 0                 # a plain int, counted by collect()
        self._tasks: set[asyncio.Task] = set()
        self._watcher: asyncio.Task | None = None
        self.next: Callable[[Query], Awaitable[Entry]] | None = None
        self.next_now: Callable[[Query], Entry] | None = None     # the next stages without awaiting, if they can

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self._feed.add_write_listener(self.written)
        if self.cache is not None:
            self._watcher = asyncio.create_task(self._follow(), name="idnode-cache-invalidation")

    async def stop(self) -> None:
        self._feed.remove_write_listener(self.written)
        tasks = [t for t in (self._watcher, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def collect(self) -> None:
        """Set the size gauges and count the hits the cache keeps as plain ints
        (called at scrape time, and once a second: see
        :meth:`resolver.metrics.Metrics.flush`)."""
        cache = self.cache
        self.metrics.entries.set(len(cache) if cache is not None else 0)
        self.metrics.bytes.set(cache.bytes if cache is not None else 0)
        missed, self.missed = self.missed, 0
        if missed:
            self.metrics.misses.inc(missed)
        if cache is None:
            return
        hits, negative = cache.found_hits, cache.missing_hits
        cache.found_hits = cache.missing_hits = 0
        if hits:
            self.metrics.hits.inc(hits)
        if negative:
            self.metrics.negative_hits.inc(negative)

    # -- the hot path -------------------------------------------------------------------
    def peek(self, key: str) -> Entry | None:
        """A fresh cached answer for an identifier key (``handle_key``), or None. Never awaits."""
        cache = self.cache
        return cache.lookup(key) if cache is not None else None

    def _prefetch(self, entry: Entry) -> None:
        """A popular entry about to expire (the cache says when): refreshed in the background."""
        self._spawn(self._refresh(entry))

    async def resolve(self, query: Query) -> Entry:
        """The cached answer, or the next stages'."""
        entry = self.peek(query.handle.key)
        if entry is not None:
            return entry
        return await self.miss(query)

    async def miss(self, query: Query) -> Entry:
        """The next stages' answer, one read for concurrent misses of one key
        (for a query the cache was just asked about)."""
        key = query.handle.key
        self.missed += 1
        pending = self._inflight.get(key)
        if pending is not None:
            self.metrics.coalesced.inc()
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            entry = await self._fetch(query)
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()          # retrieved: waiters re-raise it, nobody logs it twice
            raise
        else:
            fut.set_result(entry)
            return entry
        finally:
            del self._inflight[key]

    def miss_now(self, query: Query) -> Entry:
        """:meth:`miss` without awaiting, when the next stages read inline
        (``next_now``): nothing runs meanwhile, so there is nothing to coalesce."""
        self.missed += 1
        key = query.handle.key
        slot = slot_of(key)
        stamp = self._stamps[slot]           # read before the registry: see resolver.shared
        try:
            entry = self.next_now(query)
        except reg.StoreUnavailable as exc:
            return self._stale(key, exc)
        return self._keep(entry, slot, stamp)

    async def _fetch(self, query: Query) -> Entry:
        key = query.handle.key
        slot = slot_of(key)
        stamp = self._stamps[slot]           # read before the registry: see resolver.shared
        try:
            entry = await self.next(query)
        except reg.StoreUnavailable as exc:
            return self._stale(key, exc)
        return self._keep(entry, slot, stamp)

    def _stale(self, key: str, exc: reg.StoreUnavailable) -> Entry:
        """The registry is unavailable: an expired answer still within its stale
        deadline, or the error again."""
        stale = self.cache.stale(key) if self.cache is not None else None
        if stale is None:
            raise exc
        self.metrics.stale_served.inc()
        return stale

    def _keep(self, entry: Entry, slot: int, stamp: int) -> Entry:
        """A registry answer, tied to the stamp read before it and cached by its TTL."""
        entry.slot, entry.stamp = slot, stamp
        if self.cache is None:                   # lives for this request only
            return entry
        s = self.settings
        ttl = record_ttl(entry.record, self._wall(), s.max_ttl) if entry.status == FOUND else s.negative_ttl
        return self.cache.store(entry, ttl)

    async def _refresh(self, entry: Entry) -> None:
        self.metrics.prefetches.inc()
        try:
            await self._fetch(Query(parse_handle(entry.handle)))
        except (reg.RegistryError, InvalidHandle):
            pass                                 # the old entry stays until it expires

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- staying true to writes --------------------------------------------------------------
    def written(self, changes: Changes) -> None:
        """A write of this process, before it is acknowledged: stamp it for every
        worker of the node, and drop what this worker holds of it."""
        if changes.prefixes or changes.everything:
            self._shared.bump_all()
        else:
            self._shared.bump(handle_key(h) for h in changes.handles)
        self._forget(changes)

    def _forget(self, changes: Changes) -> None:
        cache = self.cache
        if cache is None:
            return
        if changes.prefixes or changes.everything:
            self.metrics.invalidations.inc(len(cache))
            cache.clear()
            return
        versions, dropped = changes.versions, 0
        for i, h in enumerate(changes.handles):
            key = handle_key(h)
            if versions and cache.holds(key, versions[i]):
                continue            # already the state the change left (this process's own write, read back)
            cache.invalidate(key)
            dropped += 1
        self.metrics.invalidations.inc(dropped)

    async def _follow(self) -> None:
        """Writes of other processes on the same store (the CLI, other instances).
        A feed that failed starts again from "now": what it may have missed in
        between is unknown, so the cache forgets everything."""
        while True:
            try:
                async for changes in self._feed.changes(self._poll_interval):
                    self._forget(changes)
            except reg.RegistryError as exc:
                log.warning("cannot read the change feed", extra={"error": str(exc)})
                await asyncio.sleep(self._poll_interval)
                self._forget(Changes(everything=True))
