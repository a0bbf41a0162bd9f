"""The resolution chain: the order of its stages is set here and nowhere else.

Today ``cache -> registry -> upstream``: the upstream stage says what a
registry miss means in the hierarchy (a referral for a delegated prefix, "not
responsible" for a prefix homed elsewhere) and, for a client the operations
layer lets recurse, resolves there itself. Each stage is a package under
``resolver/stages/`` with its settings, its metrics and a README, and has
``resolve(query)`` calling ``self.next(query)`` for what it cannot answer. A
stage that can answer without awaiting (the registry stage on a store that
reads inline, the embedded one) also has ``resolve_now(query)``, and the
stage before it gets it as ``self.next_now``.

Front ends ask once per request: :meth:`Pipeline.lookup` returns the entry
at once when the cache holds it (a hit never awaits and builds nothing) and
an awaitable otherwise; :meth:`Pipeline.cached` is the synchronous half
alone, for the fast paths. When every stage after the cache answers without
awaiting (``reads_inline``), :meth:`Pipeline.lookup_now` answers a miss too,
without a task or a future: the plain tiers' cold reads.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from prometheus_client import CollectorRegistry

from registry.store import Store

from .cache import Entry
from .query import Query
from .settings import Settings
from .shared import SharedState
from .stages.cache import CacheStage
from .stages.registry import RegistryStage
from .stages.upstream import UpstreamStage


class Pipeline:
    def __init__(self, stages: list) -> None:
        self.stages = stages
        for stage, following in zip(stages, stages[1:]):
            stage.next = following.resolve
            stage.next_now = getattr(following, "resolve_now", None)
        self.resolve: Callable[[Query], Awaitable[Entry]] = stages[0].resolve
        self.cache_stage = next((s for s in stages if isinstance(s, CacheStage)), None)
        if self.cache_stage is stages[0]:
            cache = self.cache_stage.cache           # the cache's own lookup when there is one: one call less
            self.cached: Callable[[str], Entry | None] = cache.lookup if cache is not None else self.cache_stage.peek
            self._after_peek = self.cache_stage.miss
            self._after_peek_now = self.cache_stage.miss_now if self.cache_stage.next_now is not None else None
        else:
            self.cached = lambda key: None
            self._after_peek = self.resolve
            self._after_peek_now = getattr(stages[0], "resolve_now", None)
        self.cache = self.cache_stage.cache if self.cache_stage is not None else None
        self.upstream = next((s for s in stages if isinstance(s, UpstreamStage)), None)
        self.reads_inline = self._after_peek_now is not None

    def lookup(self, query: Query) -> "Entry | Awaitable[Entry]":
        """The entry for ``query``: itself when cached, else an awaitable of it."""
        entry = self.cached(query.handle.key)
        return entry if entry is not None else self._after_peek(query)

    def lookup_now(self, query: Query) -> Entry:
        """The entry for ``query`` without awaiting; only when ``reads_inline``."""
        entry = self.cached(query.handle.key)
        return entry if entry is not None else self._after_peek_now(query)

    async def start(self) -> None:
        for stage in self.stages:
            await stage.start()

    async def stop(self) -> None:
        for stage in reversed(self.stages):
            await stage.stop()

    def collect(self) -> None:
        """Scrape-time sizes of every stage that has them."""
        for stage in self.stages:
            collect = getattr(stage, "collect", None)
            if collect is not None:
                collect()


def build_pipeline(settings: Settings, store: Store, shared: SharedState, registry: CollectorRegistry, *,
                   clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> Pipeline:
    """The node's chain, in order."""
    return Pipeline([
        CacheStage(settings.cache, shared, store, registry, poll_interval=settings.store.poll_interval,
                   clock=clock, wall=wall),
        RegistryStage(store, registry),
        UpstreamStage(store, registry, settings.upstream, settings.cache),
    ])
