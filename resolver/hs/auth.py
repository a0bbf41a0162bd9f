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

An answer is taken once, from the address that was challenged, by whichever
worker it reaches (:mod:`.authdir`). Checking the
answer is the operations layer's (:mod:`resolver.core.auth`), under the one
lock-out policy of every protocol.
"""

from __future__ import annotations

import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Protocol

from protocol.handle import DEFAULT_LIMITS, HandleProtocolError, Limits, Message, decode, encode

from ..core.throttle import source_prefix
from .authdir import AuthDir

NONCE_BYTES = 16
UDP_SHARE = 4              # challenges over UDP get 1/UDP_SHARE of the table
KIND = "challenge"
SWEEP_EVERY = 256          # challenges sent between sweeps of what dead workers left


@dataclass(frozen=True, slots=True)
class Pending:
    """A challenge sent and not yet answered."""

    request: Message          # the request that was challenged
    nonce: bytes
    digest: bytes             # the request digest sent with the nonce
    peer: str                 # host the request came from; the answer must too
    deadline: float


class ChallengeMetrics(Protocol):
    def pending(self, udp: bool, count: int) -> None: ...
    def evicted(self, reason: str) -> None: ...


class ChallengeBook:
    """Pending challenges by session id, bounded in time, per source prefix and
    per pool. What each challenge holds is in ``store`` (:mod:`.authdir`), so
    that the worker an answer reaches finds it; the bounds count the
    challenges this worker sent."""

    def __init__(self, store: AuthDir, *, timeout: float, max_pending: int, clock: Callable[[], float],
                 per_source: int = 16, metrics: "ChallengeMetrics | None" = None, limits: Limits = DEFAULT_LIMITS):
        self._store = store
        self.timeout = timeout
        self._metrics = metrics
        self._limits = limits
        self.per_source = per_source
        self._limit = {True: max(1, max_pending // UDP_SHARE), False: max(1, max_pending - max_pending // UDP_SHARE)}
        self._clock = clock
        self._sent: "OrderedDict[int, tuple[float, str, bool]]" = OrderedDict()   # oldest first: deadline, source, udp
        self._pool: dict[bool, "OrderedDict[int, None]"] = {True: OrderedDict(), False: OrderedDict()}
        self._per_source: dict[str, "OrderedDict[int, None]"] = {}
        self._added = 0

    def __len__(self) -> int:
        return len(self._sent)

    def held_by(self, peer: str) -> int:
        """Challenges pending for ``peer``'s source prefix."""
        return len(self._per_source.get(source_prefix(peer), ()))

    def _forget(self, session_id: int, evicted: str | None = None) -> None:
        """Drop a challenge this worker sent from its bounds (and from the store when evicted or expired)."""
        _deadline, source, udp = self._sent.pop(session_id)
        pool = self._pool[udp]
        del pool[session_id]
        mine = self._per_source[source]
        del mine[session_id]
        if not mine:
            del self._per_source[source]
        if evicted is not None:
            self._store.remove(KIND, session_id)
        if self._metrics is not None:
            self._metrics.pending(udp, len(pool))
            if evicted and evicted != "expired":
                self._metrics.evicted(evicted)

    def expire(self) -> None:
        now = self._clock()
        while self._sent:
            session_id, (deadline, _source, _udp) = next(iter(self._sent.items()))
            if deadline > now:
                break
            self._forget(session_id, "expired")

    def new_session(self) -> int:
        """A fresh, unguessable session id to challenge under (never 0: no session)."""
        while True:
            session_id = secrets.randbelow(0x7FFFFFFF) + 1
            if session_id not in self._sent and not self._store.exists(KIND, session_id) \
                    and not self._store.exists("session", session_id):
                return session_id

    def add(self, session_id: int, request: Message, nonce: bytes, digest: bytes, peer: str, *,
            udp: bool = False) -> None:
        """Keep a challenge, first making room in its source's share and its pool.
        A challenge already pending under ``session_id`` (an earlier one in the
        same session) is replaced."""
        self.expire()
        if session_id in self._sent:
            self._forget(session_id, "replaced")
        source = source_prefix(peer)
        mine = self._per_source.get(source)
        if mine is not None and len(mine) >= self.per_source:
            self._forget(next(iter(mine)), "source")         # the source's own oldest
        pool = self._pool[udp]
        if len(pool) >= self._limit[udp]:
            self._forget(next(iter(pool)), "pool")           # the pool's oldest
        self._added += 1
        if self._added % SWEEP_EVERY == 0:
            self._store.sweep(KIND, self.timeout)
        deadline = self._clock() + self.timeout
        self._store.put(KIND, session_id, {"request": encode(request), "nonce": nonce, "digest": digest,
                                           "peer": peer, "deadline": deadline})
        self._sent[session_id] = (deadline, source, udp)
        pool[session_id] = None
        self._per_source.setdefault(source, OrderedDict())[session_id] = None
        if self._metrics is not None:
            self._metrics.pending(udp, len(pool))

    def take(self, session_id: int, peer: str) -> Pending | None:
        """The challenge of ``session_id`` if it is pending for ``peer`` (it is
        then used up, whichever worker sent it); None if unknown, expired or
        another address's."""
        self.expire()
        with self._store.locked(KIND, session_id) as (entry, save):
            if entry is None:
                return None
            try:
                pending = Pending(decode(entry["request"], self._limits), entry["nonce"], entry["digest"],
                                  entry["peer"], entry["deadline"])
            except (KeyError, TypeError, HandleProtocolError):
                save(None)
                return None
            if pending.deadline <= self._clock():
                save(None)
                return None
            if pending.peer != peer:
                return None
            save(None)
        if session_id in self._sent:
            self._forget(session_id)
        return pending


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)
