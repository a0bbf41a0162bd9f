"""Authentication state every worker of a node sees: pending challenges and sessions.

A Handle.Net client opens a new TCP connection for every message: the
session setup, the request the server challenges, the answer to the
challenge and each later request of the session. With ``--workers N`` the
kernel hands each connection to any worker (SO_REUSEPORT), so a challenge
sent by one worker is answered to another, and a session set up with one is
used with all. Their state therefore lives here, one small file per entry
in the node's run directory (memory-backed ``/dev/shm``, mode 0700; a single
process gets a private one), CBOR-encoded:

* ``challenge/<session id>``: written once, taken once;
* ``session/<session id>``: read and updated (the MAC counter of each
  message moves) under the entry's lock.

Entries are read and changed under an exclusive ``flock`` of their file; one
removed is emptied first, so a process that was waiting for the lock finds
nothing: a challenge is taken once, and a replayed message is caught,
whichever worker it reaches.

Which entries exist, how many, and when they go is the books' business
(:class:`~resolver.hs.auth.ChallengeBook`, :class:`~resolver.hs.sessions.SessionBook`):
each worker bounds what it creates and removes it when it expires or is
evicted; an entry read past its deadline is removed by the reader; and now
and then a book sweeps out entries unwritten for longer than any can live
(those of a worker that died).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import cbor2

KINDS = ("challenge", "session")


def _memory_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class AuthDir:
    """The directory; entries are dicts of CBOR-encodable values."""

    def __init__(self, path: str | os.PathLike, *, owned: bool = False) -> None:
        self.path = Path(path)
        self._owned = owned
        for kind in KINDS:
            (self.path / kind).mkdir(mode=0o700, parents=True, exist_ok=True)

    @classmethod
    def private(cls) -> "AuthDir":
        """A directory of this process alone, removed by :meth:`close`."""
        return cls(tempfile.mkdtemp(prefix="idnode-auth-", dir=_memory_dir()), owned=True)

    def close(self) -> None:
        if self._owned:
            shutil.rmtree(self.path, ignore_errors=True)

    def _file(self, kind: str, key: int) -> Path:
        return self.path / kind / str(int(key))

    def put(self, kind: str, key: int, entry: dict[str, Any]) -> None:
        """Write an entry whole (atomically: aside, then renamed into place)."""
        fd, tmp = tempfile.mkstemp(prefix=".new.", dir=self.path / kind)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(cbor2.dumps(entry))
            os.replace(tmp, self._file(kind, key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self, kind: str, key: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._file(kind, key))

    def sweep(self, kind: str, max_age: float) -> int:
        """Remove the entries of ``kind`` last written more than ``max_age``
        seconds ago (by the file clock): what a worker that died left behind.
        Returns how many went."""
        gone, cutoff = 0, time.time() - max_age
        with os.scandir(self.path / kind) as entries:
            for entry in entries:
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        gone += 1
                except FileNotFoundError:
                    continue
        return gone

    def exists(self, kind: str, key: int) -> bool:
        return self._file(kind, key).exists()

    @contextlib.contextmanager
    def locked(self, kind: str, key: int) -> Iterator[tuple[dict[str, Any] | None, Callable[[dict | None], None]]]:
        """``(entry, save)`` under an exclusive lock of the entry; ``save(new)``
        rewrites it in place (``save(None)`` removes it). None if absent."""
        try:
            fd = os.open(self._file(kind, key), os.O_RDWR)
        except FileNotFoundError:
            yield None, lambda _entry: None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "r+b") as fh:
                entry = _load(fh.read())

                def save(new: dict | None) -> None:
                    fh.seek(0)
                    if new is None:            # emptied first: a process waiting on the lock reads nothing
                        fh.truncate()
                        fh.flush()
                        self.remove(kind, key)
                        return
                    fh.write(cbor2.dumps(new))
                    fh.truncate()
                    fh.flush()

                yield entry, save
        finally:
            os.close(fd)          # releases the lock


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        entry = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, EOFError):
        return None
    return entry if isinstance(entry, dict) else None
