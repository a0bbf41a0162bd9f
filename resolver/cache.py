"""The in-process resolution cache (CoreDNS ``plugin/cache``, Unbound msgreply).

Found and not-found answers are kept apart, each bounded on its own, so a
flood of distinct unknown identifiers cannot push out the hot set. Found
entries are bounded by count and by bytes, evicted least recently used.
Every entry has a fresh deadline (``expires``) and a stale deadline
(``stale_until``) after which it is never served. The clock is injected.

An entry keeps, besides the record, the values anyone may read (computed
once) and the encoded answers per protocol (filled lazily by the transports
through :meth:`Entry.encoded`), so a hit encodes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from protocol.values import HandleValue, Perm
from registry.model import HandleRecord

from .settings import CacheSettings

ENTRY_OVERHEAD = 200      # bytes of Python objects around an entry, on top of its data
ENCODINGS = 2             # answers kept per entry (Handle binary, REST JSON), each about the data's size


def public_values(values: tuple[HandleValue, ...]) -> tuple[HandleValue, ...]:
    """Values anyone may read: public read and never a secret."""
    return tuple(v for v in values if v.permissions & Perm.PUBLIC_READ and not v.is_secret)


def record_ttl(record: HandleRecord, wall_now: float, cap: float) -> float:
    """The smallest value TTL in seconds (absolute TTLs counted from now), capped."""
    ttl = cap
    for v in record.values:
        t = (v.ttl - wall_now) if v.ttl_absolute else v.ttl
        ttl = min(ttl, t)
    return max(ttl, 0.0)


class Entry:
    __slots__ = ("key", "record", "public", "expires", "stale_until", "size", "hits", "prefetching", "_encoded")

    def __init__(self, key: str, record: HandleRecord | None, expires: float, stale_until: float):
        self.key = key
        self.record = record
        self.public = public_values(record.values) if record is not None else ()
        self.expires = expires
        self.stale_until = stale_until
        self.hits = 0
        self.prefetching = False
        self._encoded: dict[str, bytes] | None = None
        # Charged up front, encodings included, so the byte bound holds without
        # accounting on the hot path.
        self.size = ENTRY_OVERHEAD + len(key) + (
            (1 + ENCODINGS) * sum(len(v.data) + len(v.type) + 48 for v in record.values) if record is not None else 0)

    @property
    def found(self) -> bool:
        return self.record is not None

    def encoded(self, protocol: str, encode: Callable[["Entry"], bytes]) -> bytes:
        """The answer for ``protocol``, encoded on first use and kept."""
        enc = self._encoded
        if enc is None:
            enc = self._encoded = {}
        out = enc.get(protocol)
        if out is None:
            out = enc[protocol] = encode(self)
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
        entry = self._found.get(key) or self._missing.get(key)
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
