"""Handle protocol over TCP: an asyncio.Protocol that moves bytes.

The codec's :class:`~protocol.handle.StreamFramer` cuts the stream into
requests; the service answers each (:meth:`HandleService.handle`). One
connection carries requests one after another (the CAICT SDK asks for site
info first and then resolves on the same connection); they are answered in
order. A request the service answers at once (the fast tier) is written
straight from ``data_received`` when nothing is ahead of it; any other goes
through the connection's queue and one worker task. The connection is closed

* on the client's EOF once every request read so far is answered (so a
  client that half-closes after sending still gets its reply);
* after ``idle_timeout`` seconds without a whole request, counted from the
  accept or the last answer, not from the last byte: a client that reads
  until the server closes gets its reply, then the close, and a message
  started and never finished is cut at the same deadline;
* after answering RC 4 to an envelope the framer cannot frame (too long, bad
  version): the next message boundary is unknown.

A connection past the :class:`~resolver.connections.Door` (per source, in
total, the file-descriptor reserve) is closed at once, unanswered: it has not
been read from, and a Handle client takes a refused connection as a server to
try again later or elsewhere.

Backpressure: reading pauses while :data:`MAX_QUEUED` requests wait. Replies
go to the transport in pieces of at most half of ``max_unread_bytes``, the
next once the transport's buffer is below its high-water mark (the other
half), so a connection never holds more than ``max_unread_bytes`` of replies
its client has not taken. A client that takes nothing for ``send_timeout``
seconds while its buffer is full is cut off (``abort``): its buffer and the
reply being sent are let go with the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from protocol.handle import HandleProtocolError, StreamFramer

from ..connections import Door, Stall
from ..metrics import ConnectionMetrics
from ..settings import HandleSettings
from .service import HandleService
from .sessionops import Link, unlink

log = logging.getLogger("idnode.hs.tcp")

MAX_QUEUED = 8


async def _ready(reply: bytes) -> bytes:
    """A fast-tier reply too large to write at once, queued for the worker."""
    return reply


class TcpConnection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: "TcpServer"):
        self._server = server
        self._service = server.service
        self._framer = StreamFramer(server.service.limits)
        self._queue: deque = deque()          # requests (bytes), framing errors, or replies being made
        self._worker: asyncio.Task | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._eof = False
        self._reading_paused = False
        self._source: str | None = None
        self._stall: Stall | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.link = Link()                    # an IDIS login holds for this connection only

    # -- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if peername else "?"
        self._source = self._server.door.admit(self.peer)
        if self._source is None:
            transport.close()
            return
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=self._server.piece)
        self._server.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._source is None:               # refused at the door
            return
        self._server.door.release(self._source)
        self._source = None
        unlink(self._service, self.link)
        self._server.forget(self)
        self._cancel_idle()
        if self._stall is not None:
            self._stall.stop()
        self._writable.set()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        # A cancelled task keeps its CancelledError, whose traceback keeps the
        # worker's frames: the reply being sent, and this connection. Let go of
        # the task, or that cycle holds the reply until a full garbage collection.
        self._worker = self._stall = None
        for item in self._queue:               # answers never to be sent: let them go quietly
            if asyncio.iscoroutine(item):
                item.close()
        self._queue.clear()

    def pause_writing(self) -> None:
        self._writable.clear()
        if self._stall is None:
            self._stall = Stall(self.transport, self._server.send_timeout, self._server.cut["send_timeout"])
        self._stall.start()

    def resume_writing(self) -> None:
        self._stall.stop()
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._eof:
            return
        answered = False
        for item in self._framer.feed(data):
            if type(item) is bytes and not self._queue and not self._busy and self._writable.is_set():
                replies = self._service.handle(item, self.peer, "tcp", self.link)
                if callable(replies):                # a miss the pipeline reads inline
                    try:
                        replies = replies()
                    except Exception:  # noqa: BLE001 - as the worker: this connection goes, the server stays
                        log.exception("connection failed", extra={"peer": self.peer})
                        self.transport.abort()
                        return
                if type(replies) is bytes:           # the fast tier: in order, nothing is ahead of it
                    if len(replies) <= self._server.piece:
                        self.transport.write(replies)
                        answered = True
                        continue
                    replies = _ready(replies)
                item = replies
            self._queue.append(item)
        if answered and not self._queue and not self._busy:
            self._arm_idle()
        if (len(self._queue) >= MAX_QUEUED or self._framer.broken) and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._start_work()

    def eof_received(self) -> bool:
        self._eof = True
        self._queue.extend(self._framer.eof())    # a message cut short by the EOF: answer RC 4
        if self._queue or self._busy:
            self._start_work()
            return True           # keep the write side open until the replies are out
        return False              # nothing to answer: the transport closes

    # -- work ---------------------------------------------------------------------------------
    @property
    def _busy(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def _start_work(self) -> None:
        if self._queue and not self._busy:
            self._cancel_idle()
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        transport = self.transport
        try:
            while self._queue and not transport.is_closing():
                item = self._queue.popleft()
                if isinstance(item, HandleProtocolError):
                    reply = self._service.malformed(item, "tcp")
                    if reply is not None:
                        transport.write(reply)
                    continue
                replies = self._service.handle(item, self.peer, "tcp", self.link) if type(item) is bytes else item
                if callable(replies):
                    replies = replies()                # the plain tier, read inline
                elif type(replies) is not bytes and asyncio.iscoroutine(replies):
                    replies = await replies            # the plain tier: one answer
                if type(replies) is bytes:
                    await self._send(replies)
                else:
                    async for reply in replies:
                        await self._send(reply)
                if self._reading_paused and not self._framer.broken and len(self._queue) < MAX_QUEUED:
                    self._reading_paused = False
                    transport.resume_reading()
        except Exception:  # noqa: BLE001 - one broken connection must not take the server down
            log.exception("connection failed", extra={"peer": self.peer})
            transport.abort()
            return
        if self._framer.broken or self._eof or self._server.stopping:
            transport.close()              # flushes what is written, then closes
        else:
            self._arm_idle()

    async def _send(self, reply: bytes) -> None:
        """Write ``reply`` in pieces, each once the client has taken enough of the last."""
        transport, piece = self.transport, self._server.piece
        if len(reply) <= piece:
            transport.write(reply)
        else:
            view = memoryview(reply)
            for at in range(0, len(view), piece):
                await self._writable.wait()
                if transport.is_closing():
                    return
                transport.write(view[at:at + piece])
        await self._writable.wait()

    # -- idle timeout and shutdown -------------------------------------------------------------
    def _arm_idle(self) -> None:
        self._cancel_idle()
        self._idle = asyncio.get_running_loop().call_later(self._server.idle_timeout, self._on_idle)

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _on_idle(self) -> None:
        self._idle = None
        if not self._busy and self.transport is not None:
            if self._framer.buffered:
                self._server.cut["message_timeout"].inc()
            self.transport.close()

    def shutdown(self) -> None:
        """Stop taking requests: close now if idle, else after the current reply."""
        if not self._busy and not self._queue:
            self.transport.close()


class TcpServer:
    """The listening socket and its connections."""

    def __init__(self, service: HandleService, settings: HandleSettings, door: Door, metrics: ConnectionMetrics):
        self.service = service
        self.door = door
        self.idle_timeout = settings.idle_timeout
        self.send_timeout = settings.send_timeout
        self.piece = settings.max_unread_bytes // 2     # the largest write, and the buffer's high-water mark
        self.cut = metrics.cuts("hs-tcp", "message_timeout", "send_timeout")
        self.connections: set[TcpConnection] = set()
        self.stopping = False
        self._server: asyncio.Server | None = None
        self._drained = asyncio.Event()

    def forget(self, conn: TcpConnection) -> None:
        self.connections.discard(conn)
        if self.stopping and not self.connections:
            self._drained.set()

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Listen; returns the port bound (``port`` 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: TcpConnection(self), host, port, reuse_address=True,
                                                reuse_port=reuse_port or None)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self, timeout: float = 5.0) -> None:
        """Close the socket, let requests in progress finish (up to ``timeout``), then abort."""
        if self._server is None:
            return
        self.stopping = True
        self._server.close()
        if self.connections:
            for conn in list(self.connections):
                conn.shutdown()
            try:
                await asyncio.wait_for(self._drained.wait(), timeout)
            except asyncio.TimeoutError:
                for conn in list(self.connections):
                    conn.transport.abort()
        await self._server.wait_closed()
        self._server = None
