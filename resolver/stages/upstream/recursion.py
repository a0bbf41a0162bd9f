"""Recursion: the node resolves elsewhere for a client (see README.md).

Whether a caller may have the node recurse is the operations layer's rule
(``resolver.core.reads``); this module is how: a :class:`~resolver.hs.walk.Walk`
from the site a referral names (or the configured roots, or the nearest
prefix site a referral named before) with a deadline for the whole
resolution, a per-server timeout, one retry on another server of a site, a
breaker per site, per-upstream metrics, and two bounded tables: the answers
(by their TTL; a not-found one for ``cache.negative_ttl``) and the prefix
sites referrals named (by their records' TTL). Nothing that failed is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from protocol.codes import RC
from protocol.handle import Limits, ReferralResponse
from protocol.identifier import handle_key
from protocol.values import HandleValue
from registry.model import HandleRecord

from ...cache import REFERRED, Entry, record_ttl
from ...hs import walk as W
from ...hs.client import (HandleClientError, HandleResponseError, HandleTimeout, HandleTransportError,
                          resolve_record)
from ...query import Query
from ...settings import CacheSettings, UpstreamSettings, servers

MAX_LABELS = 64                # upstream servers with their own metric labels; the rest are "other"
REPLY_LIMITS = Limits(max_message_bytes=2 * 1024 * 1024)   # an upstream reply larger than this is garbage
_PASSED = frozenset({RC.HANDLE_NOT_FOUND, RC.VALUES_NOT_FOUND, RC.INVALID_HANDLE, RC.SERVER_NOT_RESPONSIBLE})
_KEPT = frozenset({RC.HANDLE_NOT_FOUND, RC.VALUES_NOT_FOUND, RC.SERVER_NOT_RESPONSIBLE})
# What the node's client gets when the walk fails (never the upstream's bytes).
_FAILED = {W.LOOP: RC.RECURSION_COUNT_TOO_HIGH, W.TOO_FAR: RC.RECURSION_COUNT_TOO_HIGH,
           W.MALFORMED: RC.PROTOCOL_ERROR, W.TIMEOUT: RC.ERROR, W.UNREACHABLE: RC.ERROR, W.NOWHERE: RC.ERROR,
           W.ANSWERED: RC.ERROR}


@dataclass(frozen=True, slots=True)
class Recursed:
    """What a recursive resolution found: ``code`` RC.SUCCESS with the
    record's ``handle`` and ``values``, or the code and message to answer."""
    code: int
    handle: str
    values: tuple[HandleValue, ...] = ()
    message: str = ""


class Breakers:
    """One breaker per site (its servers): after ``failures`` in a row the
    site is not asked for ``seconds``; then one request tries it again."""

    def __init__(self, failures: int, seconds: float, limit: int, clock: Callable[[], float], gauge: Gauge):
        self._failures, self._seconds, self._limit, self._clock, self._gauge = failures, seconds, limit, clock, gauge
        self._sites: OrderedDict[tuple[str, ...], list[float]] = OrderedDict()   # site -> [failures, open until]

    def closed(self, site: tuple[str, ...]) -> bool:
        state = self._sites.get(site)
        if state is None or state[1] == 0.0:
            return True
        if self._clock() < state[1]:
            return False
        state[1] = self._clock() + self._seconds          # half-open: this one request tries it
        return True

    def failed(self, site: tuple[str, ...]) -> None:
        state = self._sites.get(site)
        if state is None:
            state = self._sites[site] = [0.0, 0.0]
            while len(self._sites) > self._limit:
                self._sites.popitem(last=False)
        self._sites.move_to_end(site)
        state[0] += 1
        if state[0] >= self._failures:
            state[1] = self._clock() + self._seconds
        self._gauge.set(self.open_count())

    def succeeded(self, site: tuple[str, ...]) -> None:
        if self._sites.pop(site, None) is not None:
            self._gauge.set(self.open_count())

    def open_count(self) -> int:
        now = self._clock()
        return sum(1 for _, until in self._sites.values() if until > now)


class Table:
    """A bounded table of values with an expiry: the least recently used go first."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self._limit, self._clock = limit, clock
        self._items: OrderedDict[str, tuple[float, object]] = OrderedDict()

    def get(self, key: str):
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, value: object, ttl: float) -> None:
        if ttl <= 0:
            return
        self._items[key] = (self._clock() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("idnode_upstream_requests_total",
                                "Requests the node sent to other nodes, by upstream server (HOST:PORT; 'other' past "
                                f"{MAX_LABELS}) and outcome: answered, referred, error (an error code), timeout, "
                                "malformed, unreachable, breaker_open (not sent).", ("upstream", "outcome"),
                                registry=registry)
        self.seconds = Histogram("idnode_upstream_request_seconds", "Time other nodes took to answer, by upstream.",
                                 ("upstream",), registry=registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self.breakers = Gauge("idnode_upstream_breakers_open", "Upstream sites not asked now (their breaker is open).",
                              registry=registry, multiprocess_mode="livesum")
        self.recursions = Counter("idnode_upstream_recursions_total",
                                  "Recursive resolutions, by outcome: answered (by another node), cached, failed "
                                  "(RC 2, 4 or 6 to the client), busy (max_pending reached: RC 3), refused (the "
                                  "client may not recurse: it got the referral).",
                                  ("outcome",), registry=registry)
        self.pending = Gauge("idnode_upstream_recursions_pending", "Recursive resolutions under way.",
                             registry=registry, multiprocess_mode="livesum")
        self.kept = Gauge("idnode_upstream_cache_entries", "Upstream answers and prefix sites kept.", ("kind",),
                          registry=registry, multiprocess_mode="livesum")
        self._labels: set[str] = set()

    def upstream(self, server: str) -> str:
        if server in self._labels or len(self._labels) < MAX_LABELS:
            self._labels.add(server)
            return server
        return "other"


class _NodeWalk(W.Walk):
    """The node's walk: asks through the breakers, within the deadline, with
    REC cleared (the node follows referrals itself) and the request's hops
    counted; keeps the prefix sites referrals name."""

    def __init__(self, recursion: "Recursion", query: Query, deadline: float) -> None:
        s = recursion.settings
        super().__init__(query.handle.text, udp=s.transport == "udp", timeout=s.timeout, max_hops=s.max_hops)
        self._r, self._deadline, self._count = recursion, deadline, query.hops + 1

    async def ask(self, server: str, handle: str, site: tuple[str, ...]) -> tuple[str, tuple[HandleValue, ...]]:
        r = self._r
        label = r.metrics.upstream(server)
        if not r.breakers.closed(site):
            r.metrics.requests.labels(label, "breaker_open").inc()
            raise HandleTransportError(f"{server}'s site is not asked for now (it failed {r.settings.breaker_failures} "
                                         "times in a row)")
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise HandleTimeout("the resolution's deadline passed")
        start = time.monotonic()
        try:
            found = await resolve_record(server, handle, udp=self.udp, timeout=min(self.timeout, left),
                                         recursive=False, recursion_count=self._count, limits=REPLY_LIMITS)
        except HandleResponseError as exc:
            r.breakers.succeeded(site)
            r.metrics.requests.labels(label, "referred" if exc.code in W.REFERRALS else "error").inc()
            raise
        except (HandleClientError, ValueError) as exc:
            r.breakers.failed(site)
            r.metrics.requests.labels(label, W.failure_kind(exc) if isinstance(exc, HandleClientError)
                                      else W.MALFORMED).inc()
            raise
        finally:
            r.metrics.seconds.labels(label).observe(time.monotonic() - start)
        r.breakers.succeeded(site)
        r.metrics.requests.labels(label, "answered").inc()
        return found

    def referred(self, body: ReferralResponse, following: list[str]) -> None:
        name = body.handle
        if name[:5].lower() == "0.na/":
            self._r.sites.put(handle_key(name[5:]), tuple(following),
                              record_ttl(HandleRecord(name, tuple(body.values or ())), time.time(), self._r.max_ttl))


class Recursion:
    def __init__(self, settings: UpstreamSettings, cache: CacheSettings, registry: CollectorRegistry, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.roots = servers(settings.roots)
        self.max_ttl = cache.max_ttl
        self._negative_ttl = cache.negative_ttl
        self.metrics = _Metrics(registry)
        self.breakers = Breakers(settings.breaker_failures, settings.breaker_seconds, settings.max_entries, clock,
                                 self.metrics.breakers)
        self.answers = Table(settings.max_entries, clock)
        self.sites = Table(settings.max_entries, clock)
        self._pending: dict[str, asyncio.Future] = {}      # resolutions under way, by handle key (shared)

    def counted(self, outcome: str) -> None:
        self.metrics.recursions.labels(outcome).inc()

    def collect(self) -> None:
        self.metrics.kept.labels("answers").set(len(self.answers))
        self.metrics.kept.labels("sites").set(len(self.sites))

    async def start_at(self, query: Query, entry: Entry,
                       local: Callable[[str], Awaitable[HandleRecord | None]]) -> list[str]:
        """The servers the walk starts from: the site this node's referral
        names (an HS_SITE, or the HS_SITE values of the service record an
        HS_SERV names, read with ``local``), else the nearest prefix site a
        referral named before, else the roots."""
        udp = self.settings.transport == "udp"
        if entry.status == REFERRED:
            found = W.servers_of(entry.record.values, udp)
            for v in entry.record.values:
                if found:
                    break
                if v.type == "HS_SERV":
                    service = await local(v.data.decode("utf-8", "replace"))
                    found = W.servers_of(service.values if service is not None else (), udp)
            return found
        parts = query.handle.prefix_key.split(".")
        for n in range(len(parts), 0, -1):
            known = self.sites.get(".".join(parts[:n]))
            if known is not None:
                return list(known)
        return list(self.roots)

    async def resolve(self, query: Query, entry: Entry,
                      local: Callable[[str], Awaitable[HandleRecord | None]]) -> Recursed:
        """``query``'s identifier resolved elsewhere (its whole public record:
        the caller's filters apply to it afterwards), from where this node's
        own answer ``entry`` says (:meth:`start_at`)."""
        key = query.handle.key
        kept = self.answers.get(key)
        if kept is not None:
            self.counted("cached")
            return kept
        start = await self.start_at(query, entry, local)
        if not start:                          # nobody to ask: this node's own word stands
            return Recursed(RC.SERVER_NOT_RESPONSIBLE, query.handle.text, (),
                            f"prefix {query.handle.prefix} is not served by this node, and it knows no node to ask")
        under_way = self._pending.get(key)
        if under_way is not None:
            return await asyncio.shield(under_way)
        if len(self._pending) >= self.settings.max_pending:
            self.counted("busy")
            return Recursed(RC.SERVER_BUSY, query.handle.text, (), "too many recursive resolutions under way")
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        self.metrics.pending.set(len(self._pending))
        try:
            found = await self._walk(query, start)
            future.set_result(found)
            return found
        except BaseException:                 # cancelled (the node stopping): those waiting get an answer
            future.set_result(Recursed(RC.ERROR, query.handle.text, (), "the resolution was abandoned; ask again"))
            raise
        finally:
            del self._pending[key]
            self.metrics.pending.set(len(self._pending))

    async def _walk(self, query: Query, start: list[str]) -> Recursed:
        deadline = time.monotonic() + self.settings.deadline
        walk = _NodeWalk(self, query, deadline)
        try:
            async with asyncio.timeout(self.settings.deadline):
                name, values, _ = await walk.run(start)
        except TimeoutError:
            self.counted("failed")
            return Recursed(RC.ERROR, query.handle.text, (),
                            f"no answer from the nodes asked within {self.settings.deadline} s")
        except W.WalkError as exc:
            if exc.kind == W.ANSWERED and exc.code in _PASSED:
                found = Recursed(exc.code, query.handle.text, (), exc.hops[-1].note if exc.hops else "")
                if exc.code in _KEPT:
                    self.answers.put(query.handle.key, found, self._negative_ttl)
                self.counted("answered")
                return found
            self.counted("failed")
            return Recursed(_FAILED[exc.kind], query.handle.text, (), f"resolving elsewhere failed: {exc}"[:500])
        found = Recursed(RC.SUCCESS, name, values)
        self.answers.put(query.handle.key, found, record_ttl(HandleRecord(name, values), time.time(), self.max_ttl))
        self.counted("answered")
        return found
