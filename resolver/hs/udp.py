"""Handle protocol over UDP: an asyncio.DatagramProtocol around the service.

Every datagram is an envelope and at most 492 message bytes. A request in
one datagram goes to the service as it is; requests that span several are
put back together first by the codec's :class:`~protocol.handle.Reassembler`
(per sender and request id, bounded in sets and bytes, dropped when
incomplete after ``handle.udp_timeout``). The service answers the commonest
requests at once (the fast tier); any other answer runs in a task of its
own, at most :data:`MAX_INFLIGHT` at once (more are dropped, as a busy UDP
server does, and counted), so a slow request never holds up another client.

Misses are shed before hits. A plain resolution the cache cannot answer
needs a registry read, several times the work of a hit; under a flood of
unknown identifiers those reads would take the loop from reading the socket,
and the kernel would drop found and not-found requests alike. So misses wait
in a queue of at most :data:`MAX_QUEUED_MISSES` and are answered between
reads (on a store that reads inline, right there; else each in a task),
once per turn of the event loop: up to :data:`MISSES_PER_TICK` when the
socket has nothing more to read, one while datagrams wait in it (the node
is behind: reading, and so the hits, come first). A full queue drops
its oldest miss (its client has likely given up), counted as ``shed``. Hits
are answered as they are read, never queued.

Before any work, the operations layer's response-rate limit
(:mod:`resolver.core.throttle`) decides whether the source is answered: a
request past its prefix's rate is dropped, or answered by the service's small
"slip" refusal; both are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import termios
from collections import deque
from typing import Callable

from protocol.handle import HandleProtocolError, Reassembler, split_datagrams

from ..core.throttle import DROP
from .service import HandleService

log = logging.getLogger("idnode.hs.udp")

MAX_INFLIGHT = 256
MAX_QUEUED_MISSES = 1024
RECEIVE_BUFFER = 4 * 1024 * 1024
MISSES_PER_TICK = 64
MAX_PENDING_SETS = 256
MAX_PENDING_BYTES = 4 * 1024 * 1024
_SEQ_AND_LENGTH = struct.Struct(">II")      # envelope bytes 12..19
_NO_BYTES = bytes(4)                         # FIONREAD's answer when nothing waits


class UdpServer(asyncio.DatagramProtocol):
    def __init__(self, service: HandleService, *, timeout: float, clock: Callable[[], float] | None = None):
        self.service = service
        self._clock = clock or service.clock
        self.reassembler = Reassembler(timeout=timeout, max_entries=MAX_PENDING_SETS,
                                       max_pending_bytes=MAX_PENDING_BYTES, limits=service.limits)
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._reassembly_drops = 0
        self._limit = service.core.udp_limit
        self._misses: deque = deque()            # (coroutine of the answer, addr), oldest first
        self._draining = False
        self._shed = 0                           # counted in bulk as the queue drains
        self._fd: int | None = None              # the socket, asked whether datagrams wait in it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:           # room for bursts while the loop is busy (the kernel caps it at rmem_max)
            self._fd = sock.fileno()
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)

    def datagram_received(self, data: bytes, addr) -> None:
        if self._stopping:
            return
        n = len(data)
        if n < 20 or _SEQ_AND_LENGTH.unpack_from(data, 12) != (0, n - 20):
            data = self._reassemble(data, addr)
            if data is None:
                return
        peer = addr[0]
        limit = self._limit
        if limit is not None and peer not in limit.exempt:
            verdict = limit.admit(peer)
            if verdict:
                self._limited(verdict, data, addr)
                return
        replies = self.service.handle(data, peer, "udp")
        if type(replies) is list:                 # the fast tier: datagrams, ready
            sendto = self.transport.sendto
            for datagram in replies:
                sendto(datagram, addr)
            return
        if callable(replies) or asyncio.iscoroutine(replies):   # a miss: queued, answered between reads
            self._queue_miss(replies, addr)
            return
        self._spawn(replies, addr)

    def _queue_miss(self, answer, addr) -> None:
        misses = self._misses
        if len(misses) >= MAX_QUEUED_MISSES:
            _discard(misses.popleft()[0])
            self._shed += 1
        misses.append((answer, addr))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Start the next few queued misses; again on the next turn while any are left."""
        misses = self._misses
        if self._shed:
            self.service.dropped("udp", "shed", self._shed)
            self._shed = 0
        for _ in range(min(1 if self._backlog() else MISSES_PER_TICK, len(misses))):
            answer, addr = misses.popleft()
            if callable(answer):
                self._answer_now(answer, addr)
            else:
                self._spawn(answer, addr)
        if misses and not self._stopping:
            asyncio.get_running_loop().call_soon(self._drain)
        else:
            self._draining = False

    def _answer_now(self, answer: Callable[[], list[bytes]], addr) -> None:
        """A miss the pipeline reads inline: answered here, no task."""
        try:
            self._sendall(answer(), addr)
        except Exception:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("udp request failed", extra={"peer": str(addr[0])})

    def _backlog(self) -> bool:
        """Whether a datagram is waiting in the socket (FIONREAD: the size of the next one)."""
        if self._fd is None:
            return False
        try:
            return fcntl.ioctl(self._fd, termios.FIONREAD, _NO_BYTES) != _NO_BYTES
        except OSError:
            return False

    def _limited(self, verdict: int, data: bytes, addr) -> None:
        """A request past its source's rate: dropped, or slipped a small refusal."""
        slip = None if verdict == DROP else self.service.slip(data)
        if slip is None:
            self.service.dropped("udp", "rate_limit")
            return
        self.service.metrics.slipped.inc()
        self.transport.sendto(slip, addr)

    def _reassemble(self, data: bytes, addr) -> bytes | None:
        """A part of a multi-packet request: the whole request once every part is in."""
        try:
            whole = self.reassembler.feed(addr, data, self._clock())
        except HandleProtocolError as exc:
            reply = self.service.malformed(exc, "udp")
            if reply is not None:
                self._spawn(self._one(reply), addr)
            return None
        dropped = self.reassembler.dropped
        if dropped != self._reassembly_drops:     # sets refused for lack of room, or expired unfinished
            for _ in range(dropped - self._reassembly_drops):
                self.service.dropped("udp", "reassembly")
            self._reassembly_drops = dropped
        return whole

    @staticmethod
    async def _one(reply: bytes):
        yield split_datagrams(reply)

    def _spawn(self, replies, addr) -> None:
        """Send ``replies`` from a task of its own, at most MAX_INFLIGHT at once
        (more are dropped, and counted)."""
        if len(self._tasks) >= MAX_INFLIGHT:
            self.service.dropped("udp", "busy")
            if asyncio.iscoroutine(replies):
                replies.close()              # never started: nothing to undo
            return
        task = asyncio.get_running_loop().create_task(self._send(replies, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def error_received(self, exc: Exception) -> None:
        pass                      # ICMP errors from a client gone away: nothing to do

    async def _send(self, replies, addr) -> None:
        """Send the datagrams of a coroutine's answer (the plain tier) or of
        every answer of an async iterator (the full tier)."""
        try:
            if asyncio.iscoroutine(replies):
                self._sendall(await replies, addr)
                return
            async for datagrams in replies:
                self._sendall(datagrams, addr)
        except Exception:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("udp request failed", extra={"peer": str(addr[0])})

    def _sendall(self, datagrams: list[bytes], addr) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for datagram in datagrams:
            transport.sendto(datagram, addr)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop receiving, let answers in progress finish (up to ``timeout``), then cancel them."""
        self._stopping = True
        while self._misses:
            _discard(self._misses.popleft()[0])
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self.transport is not None:
            self.transport.close()


def _discard(answer) -> None:
    """Let go of a queued miss never answered (a coroutine is closed: never started, nothing to undo)."""
    if asyncio.iscoroutine(answer):
        answer.close()
