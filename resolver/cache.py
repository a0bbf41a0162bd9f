"""The in-process resolution cache (CoreDNS ``plugin/cache``, Unbound msgreply).

Found and not-found answers are kept apart, each bounded on its own, so a
flood of distinct unknown identifiers cannot push out the hot set. Found
entries are bounded by count and by bytes, evicted least recently used.
Every entry has a fresh deadline (``expires``) and a stale deadline
(``stale_until``) after which it is never served. The clock is injected.

An entry keeps the encoded answers (the Handle protocol's, cut for UDP,
made when the entry is filled; REST's on first use), so a hit encodes
nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from protocol.handle import ResolutionResponse
from protocol.handle.fastpath import udp_parts
from protocol.values import HandleValue, readable
from registry.model import HandleRecord

from .settings import CacheSettings

ENTRY_OVERHEAD = 700      # bytes of Python objects around an entry (measured: python -m bench.cachemem)


def record_ttl(record: HandleRecord, wall_now: float, cap: float) -> float:
    """The smallest value TTL in seconds (absolute TTLs counted from now), capped."""
    ttl = cap
    for v in record.values:
        t = (v.ttl - wall_now) if v.ttl_absolute else v.ttl
        ttl = min(ttl, t)
    return max(ttl, 0.0)


class Entry:
    """A cached answer. Compact on purpose (the cache holds millions): when
    every value of a record is public, as for almost every product label,
    the entry keeps only the Handle protocol answer, already cut at the UDP
    datagram boundaries, and decodes the values again on the rare request
    that needs them (filters, an admin, REST's first JSON encoding)."""

    __slots__ = ("key", "handle", "expires", "stale_until", "size", "hits", "prefetching",
                 "hs_parts", "hs_body_len", "has_public", "_record", "_rest")

    def __init__(self, key: str, record: HandleRecord | None, expires: float, stale_until: float, *,
                 compact: bool = True):
        self.key = key
        self.expires = expires
        self.stale_until = stale_until
        self.hits = 0
        self.prefetching = False
        self._rest: bytes | None = None
        if record is None:
            self.handle = None
            self.hs_parts = ()
            self.hs_body_len = 0
            self.has_public = False
            self._record = None
            self.size = ENTRY_OVERHEAD + len(key)
            return
        public = readable(record.values)
        body = ResolutionResponse(record.handle, public).to_bytes()
        self.handle = record.handle
        self.hs_parts = udp_parts(body)
        self.hs_body_len = len(body)
        self.has_public = bool(public)
        # Keep the decoded record only when the answer does not hold it all
        # (or when the entry lives for one request: nothing to save then).
        self._record = None if compact and len(public) == len(record.values) else record
        # Charged up front (the REST encoding included, about 1.5 times the
        # body), so the byte bound holds without accounting on the hot path.
        self.size = ENTRY_OVERHEAD + 2 * len(key) + len(body) * 5 // 2 + (
            3 * len(body) if self._record is not None else 0)

    @property
    def found(self) -> bool:
        return self.handle is not None

    @property
    def hs_body(self) -> bytes:
        """The Handle resolution body with every public value."""
        return b"".join(self.hs_parts)[:self.hs_body_len]

    @property
    def public(self) -> tuple[HandleValue, ...]:
        """Values anyone may read (decoded from the kept answer when needed)."""
        if self.handle is None:
            return ()
        if self._record is not None:
            return readable(self._record.values)
        return ResolutionResponse.from_bytes(self.hs_body).values

    @property
    def record(self) -> HandleRecord | None:
        if self._record is not None or self.handle is None:
            return self._record
        return HandleRecord(self.handle, self.public)

    def rest(self, encode: Callable[["Entry"], bytes]) -> bytes:
        """The REST answer, encoded on first use and kept."""
        out = self._rest
        if out is None:
            # An exact-size copy: orjson's result keeps its growth slack
            # (measured: 4.3 kB of RSS per cached entry instead of 1 kB).
            out = self._rest = bytes(memoryview(encode(self)))
        return out


class Cache:
    def __init__(self, settings: CacheSettings, clock: Callable[[], float], on_evict: Callable[[], None] | None = None):
        self.settings = settings
        self._clock = clock
        self._found: OrderedDict[str, Entry] = OrderedDict()
        self._missing: OrderedDict[str, Entry] = OrderedDict()
        self._on_evict = on_evict
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._found) + len(self._missing)

    def lookup(self, key: str) -> Entry | None:
        """A fresh entry, or None. Touches LRU order; never awaits."""
        entry = self._found.get(key)
        table = self._found
        if entry is None:
            entry = self._missing.get(key)
            table = self._missing
            if entry is None:
                return None
        if entry.expires <= self._clock():
            return None
        table.move_to_end(key)
        entry.hits += 1
        return entry

    def stale(self, key: str) -> Entry | None:
        """An expired entry still within its stale deadline (for when the registry is down)."""
        entry = self._found.get(key)
        if entry is None:
            entry = self._missing.get(key)
        if entry is not None and entry.stale_until > self._clock():
            return entry
        return None

    def store(self, key: str, record: HandleRecord | None, ttl: float) -> Entry:
        now = self._clock()
        s = self.settings
        self.invalidate(key)
        entry = Entry(key, record, now + ttl, now + ttl + s.stale_seconds)
        if record is None:
            self._missing[key] = entry
            while len(self._missing) > s.max_negative_entries:
                self._missing.popitem(last=False)
                self._evicted()
        else:
            self._found[key] = entry
            self.bytes += entry.size
            self._trim()
        return entry

    def _trim(self) -> None:
        s = self.settings
        while self._found and (len(self._found) > s.max_entries or self.bytes > s.max_bytes):
            _, old = self._found.popitem(last=False)
            self.bytes -= old.size
            self._evicted()

    def _evicted(self) -> None:
        if self._on_evict is not None:
            self._on_evict()

    def invalidate(self, key: str) -> None:
        old = self._found.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self._missing.pop(key, None)

    def clear(self) -> None:
        self._found.clear()
        self._missing.clear()
        self.bytes = 0
