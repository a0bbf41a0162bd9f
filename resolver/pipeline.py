"""The resolution pipeline: cache -> registry (-> upstream, later).

The order of stages is set here and nowhere else. Transports ask
:meth:`Pipeline.cached` first (synchronous: a hit never awaits) and
:meth:`Pipeline.resolve` on a miss. Misses for one identifier are coalesced
into one registry read; popular entries are refreshed shortly before they
expire; when the registry is unavailable, expired entries are served until
their stale deadline.

Invalidation: the store tells this process at once which identifiers it
wrote (``Store.add_write_listener``); writes by other processes (the CLI,
other workers, other instances on the same store) arrive through the audit
feed, polled every ``store.poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Sequence

from protocol.identifier import Handle, handle_key
from registry import errors as reg
from registry.store import Store

from .cache import Cache, Entry, record_ttl
from .metrics import CacheMetrics
from .settings import CacheSettings

log = logging.getLogger("idnode.pipeline")

FEED_BATCH = 10_000


class Pipeline:
    def __init__(self, store: Store, settings: CacheSettings, metrics: CacheMetrics | None = None, *,
                 poll_interval: float = 0.5, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.store = store
        self.settings = settings
        self._clock = clock
        self._wall = wall
        self._poll_interval = poll_interval
        self.metrics = metrics or CacheMetrics(None)
        self.cache = Cache(settings, clock, on_evict=self.metrics.evictions.inc) if settings.enabled else None
        self._inflight: dict[str, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self._seq = 0
        self._watcher: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self.store.add_write_listener(self.invalidate)
        if self.cache is not None:
            self._seq = await self.store.last_seq()
            self._watcher = asyncio.create_task(self._watch(), name="idnode-cache-invalidation")

    async def stop(self) -> None:
        self.store.remove_write_listener(self.invalidate)
        tasks = [t for t in (self._watcher, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the hot path -------------------------------------------------------------------
    def cached(self, key: str) -> Entry | None:
        """A fresh cached answer for an identifier key (``handle_key``), or None."""
        cache = self.cache
        if cache is None:
            return None
        entry = cache.lookup(key)
        if entry is None:
            return None
        if not entry.found:
            self.metrics.negative_hits.inc()
        else:
            self.metrics.hits.inc()
            s = self.settings
            if (not entry.prefetching and entry.hits >= s.prefetch_min_hits
                    and entry.expires - self._clock() < s.prefetch_seconds):
                entry.prefetching = True
                self._spawn(self._refresh(entry.key, entry.handle))
        return entry

    async def resolve(self, handle: Handle) -> Entry:
        """The answer for a parsed identifier: cache, else registry (coalesced)."""
        key = handle.key
        entry = self.cached(key)
        if entry is not None:
            return entry
        self.metrics.misses.inc()
        pending = self._inflight.get(key)
        if pending is not None:
            self.metrics.coalesced.inc()
            return await asyncio.shield(pending)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            entry = await self._fetch(key, handle.text)
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

    async def _fetch(self, key: str, text: str) -> Entry:
        try:
            record = await self.store.get_handle(text)
        except reg.StoreUnavailable:
            stale = self.cache.stale(key) if self.cache is not None else None
            if stale is None:
                raise
            self.metrics.stale_served.inc()
            return stale
        if self.cache is None:                   # lives for this request only
            return Entry(key, record, 0.0, 0.0, compact=False)
        if record is None:
            return self.cache.store(key, None, self.settings.negative_ttl)
        return self.cache.store(key, record, record_ttl(record, self._wall(), self.settings.max_ttl))

    async def _refresh(self, key: str, text: str) -> None:
        self.metrics.prefetches.inc()
        try:
            await self._fetch(key, text)
        except reg.RegistryError:
            pass                                 # the old entry stays until it expires

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- invalidation ---------------------------------------------------------------------
    def invalidate(self, handles: Sequence[str]) -> None:
        if self.cache is not None:
            for h in handles:
                self.cache.invalidate(handle_key(h))

    async def sync_changes(self) -> int:
        """Drop entries written by other processes since the last look; returns how many changes."""
        if self.cache is None:
            return 0
        changes = await self.store.audit(since_seq=self._seq, limit=FEED_BATCH)
        if len(changes) >= FEED_BATCH:           # far behind: start over
            self.cache.clear()
            self._seq = await self.store.last_seq()
            return len(changes)
        for change in changes:
            self.cache.invalidate(handle_key(change.handle))
        if changes:
            self._seq = changes[-1].seq
        return len(changes)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            try:
                await self.sync_changes()
            except reg.RegistryError as exc:
                log.warning("cannot read the change feed", extra={"error": str(exc)})
