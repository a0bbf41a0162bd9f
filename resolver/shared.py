"""Memory the workers of one node share: write stamps and failed-login counters.

``idnode serve --workers N`` runs N processes with a cache each. Two things
must hold across them, and both live here, in one memory-mapped file the
supervisor creates and every worker maps (a single process maps anonymous
memory instead):

* **Write stamps** (read-your-writes). A table of :data:`STAMP_SLOTS`
  counters; an identifier's key hashes to one slot (CRC-32). A writer, after
  its transaction commits and *before the write is acknowledged*, sets the
  slots of every identifier it wrote to a new value of one shared counter
  (:meth:`SharedState.bump`). A cache entry remembers the stamp of its slot
  as it was read *before* its registry read, and is served only while the
  slot still holds that stamp. So an entry filled from a read older than an
  acknowledged write never answers again, in any worker: either its registry
  read came after the commit (fresh), or its stamp was read before the bump
  (and the bump changed the slot). Two identifiers sharing a slot only cost
  an extra miss. :meth:`SharedState.bump_all` (a prefix enabled or disabled)
  sets every slot, which every entry notices.
* **Failed logins** per source (lock-out). A set-associative table of
  :data:`FAIL_BUCKETS` x :data:`FAIL_WAYS` entries ``(tag, count, first)``;
  the tag is a keyed BLAKE2b of the source (the key is random per node, kept
  in the header), so nobody can aim a source at another's bucket. A full
  bucket gives the way whose window started longest ago to the newcomer.

Updates take an exclusive ``flock`` on the file (released by the kernel if a
worker dies holding it); hits read a stamp without any lock: one aligned
8-byte load, which a concurrent bump either has or has not changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import zlib
from pathlib import Path
from typing import Iterable, Iterator

STAMP_SLOTS = 1 << 20                 # 8 MiB of stamps
FAIL_BUCKETS = 1 << 14
FAIL_WAYS = 4                         # 65,536 sources tracked at once, 1 MiB
_MAGIC = b"IDNODESH"
_HEADER = struct.Struct("<8sIIIIQ16s")   # magic, version, slots, buckets, ways, counter, hash key
_HEADER_SIZE = 64
_COUNTER_AT = 24
_ENTRY = struct.Struct("<QII")            # tag, count, first failure (whole seconds of the monotonic clock)
_VERSION = 1
_MASK = STAMP_SLOTS - 1


def _size(slots: int, buckets: int, ways: int) -> int:
    return _HEADER_SIZE + 8 * slots + _ENTRY.size * buckets * ways


def slot_of(key: str) -> int:
    """The stamp slot of an identifier key (``handle_key``), the same in every process."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) & _MASK


class SharedState:
    """See the module docstring. Build with :meth:`create`, :meth:`attach`
    (a worker, given the supervisor's file) or :meth:`private` (one process)."""

    def __init__(self, mm: mmap.mmap, fd: int | None) -> None:
        self._mm = mm
        self._fd = fd
        magic, version, slots, buckets, ways, _counter, key = _HEADER.unpack_from(mm, 0)
        if magic != _MAGIC or version != _VERSION or (slots, buckets, ways) != (STAMP_SLOTS, FAIL_BUCKETS, FAIL_WAYS):
            raise ValueError("not an idnode shared-state file of this version")
        self._key = key
        self._fail_at = _HEADER_SIZE + 8 * STAMP_SLOTS
        # The hot path reads this view: stamps[slot] is one 8-byte load.
        self.stamps = memoryview(mm)[_HEADER_SIZE:self._fail_at].cast("Q")

    # -- construction ----------------------------------------------------------
    @staticmethod
    def _init(mm: mmap.mmap) -> None:
        _HEADER.pack_into(mm, 0, _MAGIC, _VERSION, STAMP_SLOTS, FAIL_BUCKETS, FAIL_WAYS, 1, os.urandom(16))
        # Slots start at 0 and the counter at 1: no bump has happened yet.

    @classmethod
    def create(cls, path: str | os.PathLike) -> "SharedState":
        """A new file (mode 0600) for the workers of one node."""
        size = _size(STAMP_SLOTS, FAIL_BUCKETS, FAIL_WAYS)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
            cls._init(mm)
            return cls(mm, fd)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def attach(cls, path: str | os.PathLike) -> "SharedState":
        fd = os.open(path, os.O_RDWR)
        try:
            mm = mmap.mmap(fd, _size(STAMP_SLOTS, FAIL_BUCKETS, FAIL_WAYS))
            return cls(mm, fd)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def private(cls) -> "SharedState":
        """Anonymous memory for a node that runs in one process."""
        mm = mmap.mmap(-1, _size(STAMP_SLOTS, FAIL_BUCKETS, FAIL_WAYS))
        cls._init(mm)
        return cls(mm, None)

    def close(self) -> None:
        self.stamps.release()
        self._mm.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._fd is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _next(self) -> int:
        (counter,) = struct.unpack_from("<Q", self._mm, _COUNTER_AT)
        counter += 1
        struct.pack_into("<Q", self._mm, _COUNTER_AT, counter)
        return counter

    # -- write stamps ------------------------------------------------------------
    def bump(self, keys: Iterable[str]) -> None:
        """Mark identifier keys written (call after the commit, before the acknowledgement)."""
        slots = {slot_of(k) for k in keys}
        if not slots:
            return
        stamps = self.stamps
        with self._locked():
            value = self._next()
            for slot in slots:
                stamps[slot] = value

    def bump_all(self) -> None:
        """Mark everything written (a prefix changed state)."""
        with self._locked():
            value = self._next()
            self._mm[_HEADER_SIZE:self._fail_at] = struct.pack("<Q", value) * STAMP_SLOTS

    # -- failed logins --------------------------------------------------------------
    def _tag(self, source: str) -> int:
        digest = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=8, key=self._key).digest()
        return int.from_bytes(digest, "little") or 1

    def _ways(self, tag: int) -> range:
        start = self._fail_at + (tag % FAIL_BUCKETS) * FAIL_WAYS * _ENTRY.size
        return range(start, start + FAIL_WAYS * _ENTRY.size, _ENTRY.size)

    def failures(self, source: str, now: int, window: int) -> int:
        """Failures of ``source`` in the window that is still open at ``now``."""
        tag = self._tag(source)
        with self._locked():
            for at in self._ways(tag):
                t, count, first = _ENTRY.unpack_from(self._mm, at)
                if t == tag:
                    return count if now - first <= window else 0
        return 0

    def add_failure(self, source: str, now: int, window: int) -> int:
        """Count one failure of ``source``; returns its count in the current window."""
        tag = self._tag(source)
        with self._locked():
            oldest, oldest_first = None, None
            for at in self._ways(tag):
                t, count, first = _ENTRY.unpack_from(self._mm, at)
                if t == tag:
                    if now - first > window:
                        count, first = 0, now
                    _ENTRY.pack_into(self._mm, at, tag, count + 1, first)
                    return count + 1
                if t == 0 or now - first > window:
                    oldest, oldest_first = at, -1
                elif oldest_first != -1 and (oldest is None or first < oldest_first):
                    oldest, oldest_first = at, first
            _ENTRY.pack_into(self._mm, oldest, tag, 1, now)
            return 1


def shared_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "shared"
