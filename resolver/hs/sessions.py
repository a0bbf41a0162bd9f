"""Handle sessions (opCodes 400, 401, 402; RFC 3652; Handle.Net
``SessionSetupRequest``, ``ServerSideSessionInfo``), as the server keeps them.

A client sets up a session (opCode 400) and agrees a session key with the
node: by Diffie-Hellman, by sending its RSA public key (or naming a handle
value holding it) for the node to encrypt a fresh key to, or by asking for
the node's public key and sending back a key encrypted to it (opCode 402).
Every later message of the session carries the session id and an HS_MAC
made with that key over the message and a counter. The first
administration request of the session is challenged once; the proven
identity then holds for the whole session, which ends at its timeout or on
opCode 401.

What keeps a session from being taken over: only the address that set it
up may use it; each message must carry a MAC made with the session key; a
counter already seen (or more than :data:`WINDOW` behind the newest) is a
replay. Each failure counts toward the one lock-out policy. Sessions are
set up over TCP and HTTP only (over UDP, where a source address proves
nothing, a setup is refused with RC 2 and a Handle client asks again over
TCP). Each worker keeps at most ``handle.max_sessions``, and one source
prefix at most ``handle.sessions_per_source`` of them; past either the
oldest makes room. Their state is in the node's :class:`~.authdir.AuthDir`,
so every worker sees every session.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from typing import Callable, Protocol

from ..core.throttle import source_prefix
from .authdir import AuthDir

KIND = "session"
WINDOW = 64                      # counters this far behind the newest are still accepted once
_MASK = (1 << WINDOW) - 1
SWEEP_EVERY = 64                 # sessions opened between sweeps of what dead workers left


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    peer: str
    deadline: float
    cipher: int                   # SessionCipher
    version: tuple[int, int]      # the protocol version the session speaks (MACs, encryption)
    key: bytes = b""              # empty while a CIPHER_SERVER exchange waits for opCode 402
    identity: tuple[str, int] | None = None     # named at setup: only it may authenticate the session
    caller: tuple[str, int] | None = None       # the identity a challenge proved
    top: int = 0                  # the newest MAC counter seen
    seen: int = 1                 # bit i: counter top - i was seen
    encrypt: bool = False         # the client asked for encrypted replies
    sent: int = 0                 # the counter of the last reply MAC'd in the session (the server's own)

    @property
    def keyed(self) -> bool:
        return bool(self.key)

    def entry(self) -> dict:
        return asdict(self)

    @classmethod
    def from_entry(cls, entry: dict | None) -> "Session | None":
        if entry is None:
            return None
        try:
            entry = dict(entry)
            entry["version"] = tuple(entry["version"])
            for name in ("identity", "caller"):
                entry[name] = tuple(entry[name]) if entry.get(name) is not None else None
            return cls(**entry)
        except (KeyError, TypeError, ValueError):
            return None

    def replied(self) -> "Session":
        """The session after one more MAC'd reply."""
        return replace(self, sent=self.sent + 1)

    def with_key(self, key: bytes, cipher: int) -> "Session":
        return replace(self, key=key, cipher=cipher)

    def counted(self, counter: int) -> "Session | None":
        """The session after a message with MAC counter ``counter``; None if that is a replay."""
        if counter > self.top:
            shift = counter - self.top
            return replace(self, top=counter, seen=((self.seen << shift) | 1) & _MASK if shift < WINDOW else 1)
        behind = self.top - counter
        if counter <= 0 or behind >= WINDOW or self.seen >> behind & 1:
            return None
        return replace(self, seen=self.seen | (1 << behind))


class SessionMetrics(Protocol):
    def sessions(self, count: int) -> None: ...
    def session_evicted(self, reason: str) -> None: ...


class SessionBook:
    """The sessions of a node: this worker's bounds, everybody's state."""

    def __init__(self, store: AuthDir, *, max_sessions: int, per_source: int, max_timeout: float,
                 clock: Callable[[], float], metrics: SessionMetrics | None = None):
        self._store = store
        self._max = max_sessions
        self._per_source = per_source
        self.max_timeout = max_timeout
        self._clock = clock
        self._metrics = metrics
        self._opened: "OrderedDict[int, tuple[float, str]]" = OrderedDict()    # oldest first
        self._by_source: dict[str, "OrderedDict[int, None]"] = {}
        self._opens = 0

    def __len__(self) -> int:
        return len(self._opened)

    def _forget(self, session_id: int, reason: str | None) -> None:
        _deadline, source = self._opened.pop(session_id)
        mine = self._by_source[source]
        del mine[session_id]
        if not mine:
            del self._by_source[source]
        self._store.remove(KIND, session_id)
        if self._metrics is not None:
            self._metrics.sessions(len(self._opened))
            if reason is not None:
                self._metrics.session_evicted(reason)

    def _expire(self) -> None:
        now = self._clock()
        for session_id, (deadline, _source) in list(self._opened.items()):
            if deadline <= now:
                self._forget(session_id, None)

    def open(self, peer: str, *, timeout: float, cipher: int, version: tuple[int, int], key: bytes = b"",
             identity: tuple[str, int] | None = None, encrypt: bool = False) -> Session:
        """A new session for ``peer``, within this worker's bounds."""
        self._expire()
        source = source_prefix(peer)
        mine = self._by_source.get(source)
        if mine is not None and len(mine) >= self._per_source:
            self._forget(next(iter(mine)), "source")
        if len(self._opened) >= self._max:
            self._forget(next(iter(self._opened)), "full")
        while True:
            session_id = secrets.randbelow(0x7FFFFFFF) + 1
            if not self._store.exists(KIND, session_id) and not self._store.exists("challenge", session_id):
                break
        self._opens += 1
        if self._opens % SWEEP_EVERY == 0:
            self._store.sweep(KIND, self.max_timeout)     # no session lives longer: a dead worker's
        timeout = min(timeout, self.max_timeout) if timeout > 0 else self.max_timeout
        session = Session(session_id, peer, self._clock() + timeout, cipher, version, key, identity,
                          encrypt=encrypt)
        self._store.put(KIND, session_id, session.entry())
        self._opened[session_id] = (session.deadline, source)
        self._by_source.setdefault(source, OrderedDict())[session_id] = None
        if self._metrics is not None:
            self._metrics.sessions(len(self._opened))
        return session

    def get(self, session_id: int) -> Session | None:
        """The session, if it exists and has not expired."""
        with self._store.locked(KIND, session_id) as (entry, save):
            session = Session.from_entry(entry)
            if entry is not None and (session is None or session.deadline <= self._clock()):
                save(None)
                return None
            return session

    def update(self, session_id: int, change: Callable[[Session], "Session | None"]) -> Session | None:
        """Apply ``change`` to the session under its lock and keep the result;
        returns what was kept, or None if the session is gone (expired, ended)
        or ``change`` refused it (returned None: the session stays as it was)."""
        with self._store.locked(KIND, session_id) as (entry, save):
            session = Session.from_entry(entry)
            if session is None or session.deadline <= self._clock():
                if entry is not None:
                    save(None)
                return None
            changed = change(session)
            if changed is None:
                return None
            save(changed.entry())
            return changed

    def close(self, session_id: int) -> None:
        """End a session (opCode 401)."""
        if session_id in self._opened:
            self._forget(session_id, None)
        else:
            self._store.remove(KIND, session_id)
