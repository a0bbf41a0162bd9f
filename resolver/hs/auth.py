"""Pending challenges of the Handle protocol (RFC 3652 section 3.5), as Handle.Net 9 keeps them.

An administrative request without credentials is answered RC 402 with a
nonce and the digest of the request, under a fresh session id; the client
answers with opCode 200 in that session, naming its key (``index:handle``)
and proving it holds the secret or the private key; the service then runs
the original request as that identity (``HandleServer.processRequest``).

:class:`ChallengeBook` keeps the pending challenges, bounded in number (in
all and per address) and in time; an answer is taken once. Checking the
answer is the operations layer's (:mod:`resolver.core.auth`), under the one
lock-out policy of every protocol.
"""

from __future__ import annotations

import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from protocol.handle import Message

NONCE_BYTES = 16
MAX_PER_PEER = 32          # pending challenges one address may hold


@dataclass(frozen=True, slots=True)
class Pending:
    """A challenge sent and not yet answered."""

    request: Message          # the request that was challenged
    nonce: bytes
    digest: bytes             # the request digest sent with the nonce
    peer: str                 # host the request came from; the answer must too
    deadline: float


class ChallengeBook:
    """Pending challenges by session id, bounded in number and in time."""

    def __init__(self, *, timeout: float, max_pending: int, clock: Callable[[], float],
                 max_per_peer: int = MAX_PER_PEER):
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_per_peer = max_per_peer
        self._clock = clock
        self._pending: "OrderedDict[int, Pending]" = OrderedDict()
        self._per_peer: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def _drop(self, session_id: int) -> Pending:
        entry = self._pending.pop(session_id)
        left = self._per_peer[entry.peer] - 1
        if left:
            self._per_peer[entry.peer] = left
        else:
            del self._per_peer[entry.peer]
        return entry

    def expire(self) -> None:
        now = self._clock()
        while self._pending:
            session_id, entry = next(iter(self._pending.items()))
            if entry.deadline > now:
                break
            self._drop(session_id)

    def new_session(self, peer: str) -> int | None:
        """A fresh session id to challenge under, or None when there is no room
        (in all, or for this address)."""
        self.expire()
        if len(self._pending) >= self.max_pending or self._per_peer.get(peer, 0) >= self.max_per_peer:
            return None
        while True:
            session_id = secrets.randbelow(0x7FFFFFFF) + 1     # unguessable, never 0 (no session)
            if session_id not in self._pending:
                return session_id

    def add(self, session_id: int, request: Message, nonce: bytes, digest: bytes, peer: str) -> None:
        self._pending[session_id] = Pending(request, nonce, digest, peer, self._clock() + self.timeout)
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1

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
