"""How many client connections a node process takes, and when it cuts one.

Every accepted TCP connection, HTTP or Handle, goes through the :class:`Door`
of its protocol, which counts connections per source (the IPv4 address, the
IPv6 /64, as the lock-out counts failures) and in total, and then through the
process's one :class:`FdGate`, which keeps the process below its
file-descriptor limit (``RLIMIT_NOFILE``, read at start). A connection past
any of them is refused at once: it had to be accepted to be seen, so it holds
a file descriptor for a moment, which the gate's reserve covers. (asyncio
cannot pause a listener; closing and reopening one would drop the port when
it is not shared.) The gate stops taking connections when they reach its
capacity, logs that once, and logs once more when it takes them again, once
they are down to nine tenths of it.

A :class:`Stall` cuts a connection whose client stopped reading its replies,
with a reset, so that the kernel too lets go of what the client did not take.
What the node held for it goes back to the system: :func:`return_big_buffers`
keeps glibc's mmap threshold where it starts. glibc otherwise raises it the
first time a big block is freed, after which big buffers (replies of large
records) come from the heap, where the small objects of other clients'
requests pin them: 50 cut clients left 69 MB behind that way; none since.

Limits are per process: with ``serve --workers N`` each worker has its own
(the kernel spreads one source's connections over the workers).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import resource
import socket
import struct

from .core.lockout import source_of
from .metrics import ConnectionMetrics

log = logging.getLogger("idnode.connections")

MIN_RESERVE = 64         # file descriptors kept for the store, logs and a refused accept
MAX_FDS = 1 << 20        # what "unlimited" comes to (the kernel's usual nr_open)
_RESET = struct.pack("ii", 1, 0)     # SO_LINGER on, 0 s: close sends RST and drops the send queue
MMAP_THRESHOLD = 128 * 1024          # glibc's initial one: blocks this big are mapped, and unmapped when freed
TRIM_THRESHOLD = 64 * 1024 * 1024    # glibc's dynamic ceiling: no trimming of the heap's top after every free
_M_TRIM_THRESHOLD = -1               # mallopt's parameters (malloc.h)
_M_MMAP_THRESHOLD = -3


def return_big_buffers() -> None:
    """Fix glibc's mmap threshold for this process (nothing without glibc):
    a freed buffer of 128 KiB or more goes back to the system at once. Fixing
    it also stops glibc's dynamic trim threshold at its start, 128 KiB, and
    the heap's top would then be given back and taken again all the time (6%
    more CPU per cold lookup, measured); the trim threshold is set where the
    dynamic one ends up instead."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)       # the C library the process runs on
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)    # fixing one freezes both: keep trimming where it ends up


def open_fds() -> int:
    """File descriptors this process has open (0 where that cannot be read)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


class FdGate:
    """The connections of one process, all protocols together, against its
    file-descriptor limit: at most ``limit - reserve - already open`` at once,
    the reserve being a tenth of the limit, at least :data:`MIN_RESERVE`."""

    def __init__(self, metrics: ConnectionMetrics):
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = MAX_FDS if soft == resource.RLIM_INFINITY else min(soft, MAX_FDS)
        self.limit = limit
        self.capacity = max(0, limit - max(MIN_RESERVE, limit // 10) - open_fds())
        self.open = 0
        self.refusing = False
        self._resume_at = self.capacity * 9 // 10
        metrics.fd_limit.set(limit)
        metrics.capacity.set(self.capacity)

    def take(self) -> bool:
        """Count one more connection; False (refuse it) at capacity, and until
        the count is back down to nine tenths of it."""
        if self.refusing or self.open >= self.capacity:
            if not self.refusing:
                self.refusing = True
                log.warning("connections at the file-descriptor reserve; refusing new ones",
                            extra={"connections": self.open, "capacity": self.capacity, "fd_limit": self.limit})
            return False
        self.open += 1
        return True

    def give(self) -> None:
        self.open -= 1
        if self.refusing and self.open <= self._resume_at:
            self.refusing = False
            log.info("taking new connections again", extra={"connections": self.open, "capacity": self.capacity})


class Door:
    """The connections of one protocol: at most ``max_connections`` and
    ``per_source`` from one source (0: no per-source bound)."""

    __slots__ = ("_gate", "_max", "_per_source", "_sources", "open", "_open", "_refused")

    def __init__(self, gate: FdGate, metrics: ConnectionMetrics, protocol: str, *, max_connections: int,
                 per_source: int):
        self._gate = gate
        self._max = max_connections
        self._per_source = per_source
        self._sources: dict[str, int] = {}      # at most max_connections entries: one per open source
        self.open = 0
        self._open = metrics.open.labels(protocol)
        self._refused = {reason: metrics.refused.labels(protocol, reason) for reason in ConnectionMetrics.REFUSALS}

    def admit(self, peer: str) -> str | None:
        """The source to :meth:`release` later, or None: refused (counted)."""
        source = source_of(peer)
        held = self._sources.get(source, 0)
        if self.open >= self._max:
            reason = "total"
        elif self._per_source and held >= self._per_source:
            reason = "per_source"
        elif not self._gate.take():
            reason = "fd_reserve"
        else:
            self._sources[source] = held + 1
            self.open += 1
            self._open.inc()
            return source
        self._refused[reason].inc()
        return None

    def release(self, source: str) -> None:
        held = self._sources[source] - 1
        if held:
            self._sources[source] = held
        else:
            del self._sources[source]
        self.open -= 1
        self._open.dec()
        self._gate.give()


class Stall:
    """Watches a transport whose writing is paused (its client is not reading):
    after ``timeout`` seconds in which its buffer did not shrink, counts it
    in ``cut`` and aborts it with a reset. Started by the protocol's
    ``pause_writing``, stopped by ``resume_writing``."""

    __slots__ = ("_transport", "_timeout", "_cut", "_timer", "_size")

    def __init__(self, transport: asyncio.Transport, timeout: float, cut):
        self._transport = transport
        self._timeout = timeout
        self._cut = cut
        self._timer: asyncio.TimerHandle | None = None
        self._size = 0

    def start(self) -> None:
        self._size = self._transport.get_write_buffer_size()
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        size = self._transport.get_write_buffer_size()
        if size < self._size:                 # slow, but reading: wait again
            self.start()
            return
        self._timer = None
        self._cut.inc()
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            except OSError:
                pass
        self._transport.abort()
