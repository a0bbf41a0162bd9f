"""The resolution cache and pipeline, with an injected clock (no sleeps)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from prometheus_client import CollectorRegistry

from protocol.identifier import parse_handle
from protocol.values import HandleValue
from registry import open_store
from registry.errors import StoreUnavailable
from resolver.pipeline import Pipeline, build_pipeline
from resolver.query import Query
from resolver.settings import CacheSettings, Settings
from resolver.shared import SharedState
from tests.conftest import provision_node


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """Wraps a real store to count (and optionally hold) registry reads."""

    def __init__(self, store) -> None:
        self._store = store
        self.reads = 0
        self.gate: asyncio.Event | None = None
        self.down = False

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def get_handle(self, handle):
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise StoreUnavailable("registry down for the test")
        return await self._store.get_handle(handle)


def url(u: str, ttl: int = 100) -> list[HandleValue]:
    return [HandleValue(1, "URL", u.encode(), ttl=ttl)]


@pytest.fixture
async def stores(settings):
    """Two store instances on one file: 'here' (this worker) and 'there' (another process)."""
    await provision_node(settings)
    here = open_store(settings.store.url, home=settings.home, limits=settings.registry.limits())
    there = open_store(settings.store.url, home=settings.home, limits=settings.registry.limits())
    await here.open()
    await there.open()
    yield here, there
    await here.close()
    await there.close()


class P:
    """A pipeline with short names for what the tests look at."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.stage = pipeline.cache_stage
        self.metrics = self.stage.metrics
        self.cache = pipeline.cache
        self.cached = pipeline.cached
        self.start, self.stop = pipeline.start, pipeline.stop

    async def resolve(self, handle):
        return await self.pipeline.resolve(Query(handle))


def make(store, clock, shared: SharedState | None = None, poll_interval: float = 0.5, **cache) -> P:
    settings = dataclasses.replace(Settings(), cache=dataclasses.replace(CacheSettings(), **cache))
    settings = settings.with_overrides({"store.poll_interval": poll_interval})
    return P(build_pipeline(settings, store, shared or SharedState.private(), CollectorRegistry(), clock=clock,
                            wall=lambda: 1_800_000_000.0))


async def test_ttl_expiry_from_the_smallest_value_ttl(stores):
    here, there = stores
    clock = Clock()
    await there.put_handle("88.118.8/t", [*url("https://a/", ttl=50), HandleValue(2, "DESC", b"d", ttl=500)],
                           mode="create", actor="t")
    p = make(here, clock)
    h = parse_handle("88.118.8/t")
    assert (await p.resolve(h)).record.values[0].data == b"https://a/"
    await there.put_handle("88.118.8/t", url("https://b/"), mode="replace", actor="t")   # not synced
    clock.now += 49
    assert p.cached(h.key).record.values[0].data == b"https://a/"
    clock.now += 2
    assert p.cached(h.key) is None
    assert (await p.resolve(h)).record.values[0].data == b"https://b/"


async def test_max_ttl_caps_and_absolute_ttl_counts_from_now(stores):
    here, _ = stores
    clock = Clock()
    await here.put_handle("88.118.8/abs", [HandleValue(1, "URL", b"u", ttl=1_800_000_020, ttl_absolute=True)],
                          mode="create", actor="t")
    await here.put_handle("88.118.8/long", url("u", ttl=10**6), mode="create", actor="t")
    p = make(here, clock, max_ttl=60.0)
    e_abs = await p.resolve(parse_handle("88.118.8/abs"))
    e_long = await p.resolve(parse_handle("88.118.8/long"))
    assert e_abs.expires == clock.now + 20
    assert e_long.expires == clock.now + 60


async def test_negative_caching_and_its_own_ttl(stores):
    here, there = stores
    clock = Clock()
    p = make(here, clock, negative_ttl=10.0)
    h = parse_handle("88.118.8/later")
    assert (await p.resolve(h)).record is None
    await there.put_handle(h.text, url("https://x/"), mode="create", actor="t")
    clock.now += 9
    assert p.cached(h.key).record is None
    p.stage.collect()                                 # hits are plain ints until collected (scrape time)
    assert p.metrics.negative_hits._value.get() == 1
    clock.now += 2
    assert (await p.resolve(h)).record is not None


async def test_concurrent_misses_are_coalesced(stores):
    here, _ = stores
    await here.put_handle("88.118.8/c", url("https://c/"), mode="create", actor="t")
    counting = CountingStore(here)
    counting.gate = asyncio.Event()
    p = make(counting, Clock())
    h = parse_handle("88.118.8/C")
    tasks = [asyncio.create_task(p.resolve(h)) for _ in range(10)]
    await asyncio.sleep(0)           # let every task reach the pipeline
    counting.gate.set()
    entries = await asyncio.gather(*tasks)
    assert counting.reads == 1
    assert len({id(e) for e in entries}) == 1 and entries[0].record.handle == "88.118.8/c"
    assert p.metrics.coalesced._value.get() == 9


async def test_case_variants_share_one_entry(stores):
    here, _ = stores
    await here.put_handle("88.118.8/Case", url("https://c/"), mode="create", actor="t")
    counting = CountingStore(here)
    p = make(counting, Clock())
    a = await p.resolve(parse_handle("88.118.8/CASE"))
    b = await p.resolve(parse_handle("88.118.8/case"))
    assert a is b and counting.reads == 1 and len(p.cache) == 1


async def test_eviction_by_bytes_keeps_recently_used(stores):
    here, _ = stores
    big = b"x" * 1000
    for i in range(20):
        await here.put_handle(f"88.118.8/big-{i}", [HandleValue(1, "DATA", big)], mode="create", actor="t")
    p = make(here, Clock(), max_bytes=10_000)
    first = parse_handle("88.118.8/big-0")
    await p.resolve(first)
    for i in range(1, 20):
        await p.resolve(parse_handle(f"88.118.8/big-{i}"))
        assert p.cached(first.key) is not None          # kept warm
    assert p.cache.bytes <= 10_000
    assert p.metrics.evictions._value.get() > 0
    assert p.cached(parse_handle("88.118.8/big-1").key) is None


async def test_unknown_flood_cannot_push_out_the_hot_set(stores):
    here, _ = stores
    await here.put_handle("88.118.8/hot", url("https://hot/"), mode="create", actor="t")
    p = make(here, Clock(), max_negative_entries=50, max_entries=10)
    hot = parse_handle("88.118.8/hot")
    await p.resolve(hot)
    for i in range(500):
        await p.resolve(parse_handle(f"88.118.8/unknown-{i}"))
    assert p.cached(hot.key) is not None
    assert len(p.cache) == 51


async def test_stale_answers_while_the_registry_is_down(stores):
    here, _ = stores
    await here.put_handle("88.118.8/s", url("https://s/", ttl=10), mode="create", actor="t")
    counting = CountingStore(here)
    clock = Clock()
    p = make(counting, clock, stale_seconds=100.0)
    h = parse_handle("88.118.8/s")
    await p.resolve(h)
    counting.down = True
    clock.now += 50
    assert (await p.resolve(h)).record.values[0].data == b"https://s/"
    assert p.metrics.stale_served._value.get() == 1
    clock.now += 100
    with pytest.raises(StoreUnavailable):
        await p.resolve(h)
    with pytest.raises(StoreUnavailable):            # nothing cached: the error reaches the caller
        await p.resolve(parse_handle("88.118.8/never-seen"))


async def test_prefetch_refreshes_popular_entries_before_expiry(stores):
    here, there = stores
    await here.put_handle("88.118.8/p", url("https://p1/", ttl=60), mode="create", actor="t")
    counting = CountingStore(here)
    clock = Clock()
    p = make(counting, clock, prefetch_seconds=5.0, prefetch_min_hits=3)
    h = parse_handle("88.118.8/p")
    await p.resolve(h)
    await there.put_handle(h.text, url("https://p2/", ttl=60), mode="replace", actor="t")
    for _ in range(3):
        p.cached(h.key)
    assert counting.reads == 1                        # popular, but not near expiry yet
    clock.now += 56
    assert p.cached(h.key).record.values[0].data == b"https://p1/"   # served at once...
    await asyncio.gather(*p.stage._tasks)             # ...while the refresh runs in the background
    assert counting.reads == 2 and p.metrics.prefetches._value.get() == 1
    assert p.cached(h.key).record.values[0].data == b"https://p2/"
    assert p.cached(h.key).expires == clock.now + 60


async def wait_until(predicate, what: str) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_local_writes_invalidate_at_once_and_others_through_the_feed(stores):
    here, there = stores
    clock = Clock()
    p_here = make(here, clock, poll_interval=0.01)
    await p_here.start()
    try:
        h = parse_handle("88.118.8/w")
        assert (await p_here.resolve(h)).record is None
        await here.put_handle(h.text, url("https://local/"), mode="create", actor="t")
        assert p_here.cached(h.key) is None                      # dropped by the write listener
        assert (await p_here.resolve(h)).record.values[0].data == b"https://local/"
        await there.put_handle(h.text, url("https://remote/"), mode="replace", actor="t")
        assert p_here.cached(h.key) is not None                  # another process: not yet seen
        await wait_until(lambda: p_here.cached(h.key) is None, "the feed drops the entry")
        assert (await p_here.resolve(h)).record.values[0].data == b"https://remote/"
        await there.set_prefix_state("88.118.8", "disabled", actor="t")   # a prefix's state: everything
        await wait_until(lambda: p_here.cached(h.key) is None and len(p_here.cache) == 0, "the feed clears all")
        assert (await p_here.resolve(h)).status == 2                     # DISABLED: not served
    finally:
        await p_here.stop()


async def test_the_feed_keeps_an_entry_that_already_shows_the_change(stores):
    """A write this process made and read back comes round again in the feed:
    the entry holding that very state stays (so it can be served stale if the
    registry goes away); one holding an older state is dropped."""
    here, there = stores
    p_here = make(here, Clock(), poll_interval=0.01)
    await p_here.start()
    try:
        mine, theirs = parse_handle("88.118.8/mine"), parse_handle("88.118.8/theirs")
        await there.put_handle(theirs.text, url("https://v1/"), mode="create", actor="t")
        await p_here.resolve(theirs)                                     # cached at v1
        await here.put_handle(mine.text, url("https://mine/"), mode="create", actor="t")
        await p_here.resolve(mine)                                       # read back at once, cached
        before = p_here.metrics.invalidations._value.get()
        await there.put_handle(theirs.text, url("https://v2/"), mode="replace", actor="t")
        await wait_until(lambda: p_here.cached(theirs.key) is None, "the feed drops the older entry")
        assert p_here.cached(mine.key) is not None                       # its own write, told again: kept
        assert p_here.metrics.invalidations._value.get() - before == 1   # only the older one was dropped
    finally:
        await p_here.stop()


async def test_a_write_in_one_worker_is_never_served_stale_by_another(stores):
    """Two workers (two pipelines on two store connections) share one stamp
    table: the writer's stamp makes the other's entry a miss before the write
    returns, with no feed in between."""
    here, there = stores
    shared = SharedState.private()
    writer, reader = make(here, Clock(), shared), make(there, Clock(), shared, poll_interval=3600)
    await writer.start()
    await reader.start()
    try:
        h = parse_handle("88.118.8/ryw")
        assert (await reader.resolve(h)).record is None           # a negative entry in the reader
        await here.put_handle(h.text, url("https://v1/"), mode="create", actor="t")
        assert reader.cached(h.key) is None
        assert (await reader.resolve(h)).record.values[0].data == b"https://v1/"
        other = parse_handle("88.118.8/untouched")
        await reader.resolve(other)
        await here.put_handle(h.text, url("https://v2/"), mode="replace", actor="t")
        assert reader.cached(h.key) is None and reader.cached(other.key) is not None
        assert (await reader.resolve(h)).record.values[0].data == b"https://v2/"
        await here.set_prefix_state("88.118.8", "disabled", actor="t")
        assert reader.cached(h.key) is None and reader.cached(other.key) is None
    finally:
        await reader.stop()
        await writer.stop()


async def test_cache_off_reads_the_registry_every_time(stores):
    here, _ = stores
    await here.put_handle("88.118.8/off", url("https://o/"), mode="create", actor="t")
    counting = CountingStore(here)
    p = make(counting, Clock(), enabled=False)
    for _ in range(3):
        assert (await p.resolve(parse_handle("88.118.8/off"))).record is not None
    assert counting.reads == 3 and p.cache is None


async def test_a_broken_change_feed_makes_the_cache_forget_everything(stores):
    """What a failed feed may have missed is unknown: every entry goes."""
    here, _ = stores

    class Flaky(CountingStore):
        def __init__(self, store):
            super().__init__(store)
            self.broken = asyncio.Event()

        async def changes(self, poll_interval):
            if not self.broken.is_set():
                self.broken.set()
                raise StoreUnavailable("feed down for the test")
            async for changes in self._store.changes(poll_interval):
                yield changes

    await here.put_handle("88.118.8/kept", url("https://k/"), mode="create", actor="t")
    flaky = Flaky(here)
    p = make(flaky, Clock(), poll_interval=0.01)
    h = parse_handle("88.118.8/kept")
    await p.resolve(h)                                   # cached before the feed starts
    await p.start()
    try:
        await flaky.broken.wait()
        await wait_until(lambda: p.cached(h.key) is None, "the cache forgets after the feed failed")
    finally:
        await p.stop()
