"""Handle protocol over UDP: an asyncio.DatagramProtocol around the service.

Every datagram is an envelope and at most 492 message bytes. Requests that
span several datagrams are put back together by the codec's
:class:`~protocol.handle.Reassembler` (per sender and request id, bounded in
sets and bytes, dropped when incomplete after ``handle.udp_timeout``);
replies longer than one datagram are cut by ``split_datagrams``. Each
request is answered by its own task, at most :data:`MAX_INFLIGHT` at once
(more are dropped, as a busy UDP server does), so a slow or incomplete
request never holds up another client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from protocol.handle import HandleProtocolError, Reassembler, split_datagrams

from .service import HandleService

log = logging.getLogger("idnode.hs.udp")

MAX_INFLIGHT = 256
MAX_PENDING_SETS = 256
MAX_PENDING_BYTES = 4 * 1024 * 1024


class UdpServer(asyncio.DatagramProtocol):
    def __init__(self, service: HandleService, *, timeout: float, clock: Callable[[], float] | None = None):
        self.service = service
        self._clock = clock or service.clock
        self.reassembler = Reassembler(timeout=timeout, max_entries=MAX_PENDING_SETS,
                                       max_pending_bytes=MAX_PENDING_BYTES, limits=service.limits)
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self.dropped = 0          # whole requests refused for lack of room

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr) -> None:
        if self._stopping:
            return
        datagrams = self.service.fast_answer(data, "udp")
        if datagrams is not None:             # a plain resolution answered from the cache
            sendto = self.transport.sendto
            for datagram in datagrams:
                sendto(datagram, addr)
            return
        plain = self.service.plain(data)      # a plain resolution is one whole datagram
        if plain is not None:
            self._spawn(self._answer_plain(plain, data, addr))
            return
        try:
            whole = self.reassembler.feed(addr, data, self._clock())
        except HandleProtocolError as exc:
            reply = self.service.malformed(exc, "udp")
            if reply is not None:
                self._send(reply, addr)
            return
        if whole is None:
            return
        self._spawn(self._answer(whole, addr))

    def _spawn(self, coro) -> None:
        """Answer in a task of its own, at most MAX_INFLIGHT at once (more are dropped)."""
        if len(self._tasks) >= MAX_INFLIGHT:
            self.dropped += 1
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def error_received(self, exc: Exception) -> None:
        pass                      # ICMP errors from a client gone away: nothing to do

    def _send(self, wire: bytes, addr) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        for datagram in split_datagrams(wire):
            self.transport.sendto(datagram, addr)

    async def _answer_plain(self, plain, data: bytes, addr) -> None:
        """A plain resolution: one registry read and its datagrams, else the full path."""
        try:
            datagrams = await self.service.plain_answer(plain, "udp", datagrams=True)
        except Exception:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("udp request failed", extra={"peer": str(addr[0])})
            return
        if datagrams is None:
            await self._answer(data, addr)
        elif self.transport is not None and not self.transport.is_closing():
            for datagram in datagrams:
                self.transport.sendto(datagram, addr)

    async def _answer(self, whole: bytes, addr) -> None:
        try:
            async for reply in self.service.respond(whole, str(addr[0]), "udp"):
                self._send(reply, addr)
        except Exception:  # noqa: BLE001 - one bad request must not stop the server
            log.exception("udp request failed", extra={"peer": str(addr[0])})

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop receiving, let answers in progress finish (up to ``timeout``), then cancel them."""
        self._stopping = True
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self.transport is not None:
            self.transport.close()
