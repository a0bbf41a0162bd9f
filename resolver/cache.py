"""The in-process resolution cache (CoreDNS ``plugin/cache``, Unbound msgreply).

An :class:`Entry` is one answer of the registry: the record (or that there is
none, or that its prefix is disabled; kept in its stored form once rendered),
its deadlines, and the stamp that
ties it to the shared write stamps (:mod:`resolver.shared`): an entry is
served only while its slot still holds the stamp read before its registry
read, so no worker answers from an entry older than an acknowledged write.
It knows no wire format: each front end keeps its renderings of an entry
(Handle datagrams, REST JSON) in the entry's ``memo``, charged to the cache's
byte bound through :meth:`Cache.remember`.

Found and not-found answers are kept apart, each bounded on its own, so a
flood of distinct unknown identifiers cannot push out the hot set. Found
entries are bounded by count and by bytes, evicted least recently used.
Every entry has a fresh deadline (``expires``) and a stale deadline
(``stale_until``) after which it is never served. The clock is injected.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from registry.model import HandleRecord

from .settings import CacheSettings

FOUND = 0
NOT_FOUND = 1
DISABLED = 2             # the identifier's prefix is disabled: not served
REFERRED = 3             # not here, and its prefix is delegated: ``record`` is the prefix record (where to ask)
NOT_HERE = 4             # its prefix is not homed on this node

_NEVER = float("inf")
ENTRY_OVERHEAD = 500      # bytes of Python objects around an entry (measured: python -m bench.cachemem)


def record_ttl(record: HandleRecord, wall_now: float, cap: float) -> float:
    """The smallest value TTL in seconds (absolute TTLs counted from now), capped."""
    ttl = cap
    for v in record.values:
        t = (v.ttl - wall_now) if v.ttl_absolute else v.ttl
        ttl = min(ttl, t)
    return max(ttl, 0.0)


class Entry:
    """A registry answer (see the module docstring). ``memo`` is the front
    ends' dict of renderings, None until the first one."""

    __slots__ = ("key", "handle", "record", "status", "expires", "stale_until", "refresh_at", "size", "hits",
                 "slot", "stamp", "memo")

    def __init__(self, key: str, record: HandleRecord | None, expires: float = 0.0, stale_until: float = 0.0,
                 slot: int = 0, stamp: int = 0):
        self.key = key
        self.record = record
        if record is None:
            self.status, self.handle = NOT_FOUND, None
        else:
            self.status = DISABLED if record.prefix_disabled else FOUND
            self.handle = record.handle
        self.expires = expires
        self.stale_until = stale_until
        self.refresh_at = _NEVER          # when a popular entry is due for a refresh (set by the cache)
        self.slot = slot
        self.stamp = stamp
        self.hits = 0
        self.memo: dict[Any, Any] | None = None
        self.size = 0                   # charged when the cache keeps it

    @property
    def found(self) -> bool:
        return self.status == FOUND

    @classmethod
    def elsewhere(cls, key: str, status: int, prefix_record: HandleRecord | None = None) -> "Entry":
        """A miss the hierarchy explains: REFERRED (with the prefix record) or NOT_HERE."""
        entry = cls(key, None)
        entry.status, entry.record = status, prefix_record
        return entry


class Cache:
    """``on_due(entry)`` is called when a lookup finds a popular entry (at least
    ``prefetch_min_hits`` hits) within ``prefetch_seconds`` of expiring, once
    per entry: the cache stage refreshes it before it expires."""

    def __init__(self, settings: CacheSettings, clock: Callable[[], float], stamps,
                 on_evict: Callable[[], None] | None = None, on_due: Callable[[Entry], None] | None = None):
        self.settings = settings
        self._clock = clock
        self._stamps = stamps           # the shared stamp table (indexable by slot)
        self._found: OrderedDict[str, Entry] = OrderedDict()
        self._missing: OrderedDict[str, Entry] = OrderedDict()
        self._on_evict = on_evict
        self._on_due = on_due
        self._min_hits = settings.prefetch_min_hits
        self.bytes = 0
        self.found_hits = self.missing_hits = 0     # plain ints, read and reset by the cache stage's collect()

    def __len__(self) -> int:
        return len(self._found) + len(self._missing)

    def lookup(self, key: str) -> Entry | None:
        """A fresh entry no write has overtaken, or None. Touches LRU order; never awaits."""
        entry = self._found.get(key)
        table = self._found
        if entry is None:
            entry = self._missing.get(key)
            table = self._missing
            if entry is None:
                return None
        now = self._clock()
        if entry.expires <= now or self._stamps[entry.slot] != entry.stamp:
            return None
        table.move_to_end(key)
        entry.hits += 1
        if table is self._found:
            self.found_hits += 1
        else:
            self.missing_hits += 1
        if now >= entry.refresh_at and entry.hits >= self._min_hits and self._on_due is not None:
            entry.refresh_at = _NEVER
            self._on_due(entry)
        return entry

    def stale(self, key: str) -> Entry | None:
        """An expired entry still within its stale deadline and not overtaken by
        a write (for when the registry is unavailable)."""
        entry = self._found.get(key)
        if entry is None:
            entry = self._missing.get(key)
        if entry is not None and entry.stale_until > self._clock() and self._stamps[entry.slot] == entry.stamp:
            return entry
        return None

    def store(self, entry: Entry, ttl: float) -> Entry:
        """Keep ``entry`` for ``ttl`` seconds (and ``stale_seconds`` more as a fallback)."""
        now = self._clock()
        s = self.settings
        entry.expires = now + ttl
        entry.stale_until = now + ttl + s.stale_seconds
        if entry.status == FOUND:
            entry.refresh_at = entry.expires - s.prefetch_seconds
        self.invalidate(entry.key)
        entry.size += ENTRY_OVERHEAD + 2 * len(entry.key) + (entry.record.size if entry.record is not None else 0)
        if entry.status == FOUND:
            self._found[entry.key] = entry
            self.bytes += entry.size
            self._trim()
        else:
            self._missing[entry.key] = entry
            while len(self._missing) > s.max_negative_entries:
                self._missing.popitem(last=False)
                self._evicted()
        return entry

    def remember(self, entry: Entry, name: Any, rendering: Any, nbytes: int) -> Any:
        """Keep a front end's rendering of ``entry`` (charged to the byte bound);
        the record keeps only its stored form from then on."""
        memo = entry.memo
        if memo is None:
            memo = entry.memo = {}
        memo[name] = rendering
        if entry.record is not None:
            nbytes -= entry.record.release()
        entry.size += nbytes
        if self._found.get(entry.key) is entry:
            self.bytes += nbytes
            self._trim()
        return rendering

    def _trim(self) -> None:
        s = self.settings
        while self._found and (len(self._found) > s.max_entries or self.bytes > s.max_bytes):
            _, old = self._found.popitem(last=False)
            self.bytes -= old.size
            self._evicted()

    def _evicted(self) -> None:
        if self._on_evict is not None:
            self._on_evict()

    def holds(self, key: str, version: str) -> bool:
        """Whether the entry of ``key`` already answers with the record whose
        stored form has digest ``version`` ("": no record). A change the
        entry already shows need not drop it: a write this process read
        back, told again by the change feed, leaves its entry standing, to
        be served stale should the registry go away."""
        entry = self._found.get(key) or self._missing.get(key)
        if entry is None:
            return False
        if entry.record is None:
            return version == ""
        return entry.record.version() == version

    def invalidate(self, key: str) -> None:
        old = self._found.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self._missing.pop(key, None)

    def clear(self) -> None:
        self._found.clear()
        self._missing.clear()
        self.bytes = 0
