"""Pending challenges of the Handle protocol (RFC 3652 section 3.5), as Handle.Net 9 keeps them.

An administrative request without credentials is answered RC 402 with a
nonce and the digest of the request, under a fresh session id; the client
answers with opCode 200 in that session, naming its key (``index:handle``)
and proving it holds the secret or the private key; the service then runs
the original request as that identity (``HandleServer.processRequest``).

:class:`ChallengeBook` keeps the pending challenges, bounded in time and in
number so that nobody can take the table from others:

* per *source prefix* (IPv4 /24, IPv6 /56, as the UDP rate limit counts
  them): ``handle.challenges_per_source``; past it the source's own oldest
  challenge makes room;
* in two pools: challenges sent over UDP, whose source address anyone may
  claim, share a quarter of ``handle.max_challenges``; those sent over TCP
  and HTTP (addresses the handshake proved) the rest. A full pool makes room
  by forgetting its oldest challenge, so a newcomer is always challenged: to
  crowd out a real client's pending challenge, an attacker must fill a whole
  pool, from many prefixes, faster than that client answers.

An answer is taken once, from the address that was challenged. Checking the
answer is the operations layer's (:mod:`resolver.core.auth`), under the one
lock-out policy of every protocol.
"""

from __future__ import annotations

import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Protocol

from protocol.handle import Message

from ..core.throttle import source_prefix

NONCE_BYTES = 16
UDP_SHARE = 4              # challenges over UDP get 1/UDP_SHARE of the table


@dataclass(frozen=True, slots=True)
class Pending:
    """A challenge sent and not yet answered."""

    request: Message          # the request that was challenged
    nonce: bytes
    digest: bytes             # the request digest sent with the nonce
    peer: str                 # host the request came from; the answer must too
    deadline: float
    source: str               # the peer's source prefix
    udp: bool                 # sent over UDP (the pool it counts in)


class ChallengeMetrics(Protocol):
    def pending(self, udp: bool, count: int) -> None: ...
    def evicted(self, reason: str) -> None: ...


class ChallengeBook:
    """Pending challenges by session id, bounded in time, per source prefix and per pool."""

    def __init__(self, *, timeout: float, max_pending: int, clock: Callable[[], float], per_source: int = 16,
                 metrics: "ChallengeMetrics | None" = None):
        self.timeout = timeout
        self._metrics = metrics
        self.per_source = per_source
        self._limit = {True: max(1, max_pending // UDP_SHARE), False: max(1, max_pending - max_pending // UDP_SHARE)}
        self._clock = clock
        self._pending: "OrderedDict[int, Pending]" = OrderedDict()      # oldest first
        self._pool: dict[bool, "OrderedDict[int, None]"] = {True: OrderedDict(), False: OrderedDict()}
        self._per_source: dict[str, "OrderedDict[int, None]"] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def held_by(self, peer: str) -> int:
        """Challenges pending for ``peer``'s source prefix."""
        return len(self._per_source.get(source_prefix(peer), ()))

    def _drop(self, session_id: int, evicted: str | None = None) -> Pending:
        entry = self._pending.pop(session_id)
        pool = self._pool[entry.udp]
        del pool[session_id]
        mine = self._per_source[entry.source]
        del mine[session_id]
        if not mine:
            del self._per_source[entry.source]
        if self._metrics is not None:
            self._metrics.pending(entry.udp, len(pool))
            if evicted:
                self._metrics.evicted(evicted)
        return entry

    def expire(self) -> None:
        now = self._clock()
        while self._pending:
            session_id, entry = next(iter(self._pending.items()))
            if entry.deadline > now:
                break
            self._drop(session_id)

    def new_session(self) -> int:
        """A fresh, unguessable session id to challenge under (never 0: no session)."""
        while True:
            session_id = secrets.randbelow(0x7FFFFFFF) + 1
            if session_id not in self._pending:
                return session_id

    def add(self, session_id: int, request: Message, nonce: bytes, digest: bytes, peer: str, *,
            udp: bool = False) -> None:
        """Keep a challenge, first making room in its source's share and its pool."""
        self.expire()
        source = source_prefix(peer)
        mine = self._per_source.get(source)
        if mine is not None and len(mine) >= self.per_source:
            self._drop(next(iter(mine)), "source")         # the source's own oldest
        pool = self._pool[udp]
        if len(pool) >= self._limit[udp]:
            self._drop(next(iter(pool)), "pool")           # the pool's oldest
        self._pending[session_id] = Pending(request, nonce, digest, peer, self._clock() + self.timeout, source, udp)
        pool[session_id] = None
        self._per_source.setdefault(source, OrderedDict())[session_id] = None
        if self._metrics is not None:
            self._metrics.pending(udp, len(pool))

    def take(self, session_id: int, peer: str) -> Pending | None:
        """The challenge of ``session_id`` if it is pending for ``peer`` (it is
        then used up); None if unknown, expired or another address's."""
        self.expire()
        entry = self._pending.get(session_id)
        if entry is None or entry.peer != peer:
            return None
        return self._drop(session_id)


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)
