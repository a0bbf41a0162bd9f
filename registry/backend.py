"""What a storage backend provides: storage only, no rules.

:class:`registry.rules.Registry` holds every rule (validation, sealing
secrets, admin identities in step with their secret values, prefix states,
counters, audit digests, batch reports) and keeps its data through this
interface, so each backend is a thin module: rows in, rows out, atomically.

A write is a function ``fn(tx, *args)`` that :meth:`Backend.transact` runs
atomically: everything ``fn`` writes through ``tx`` is committed together or
not at all, and what it reads through ``tx`` is what it writes against
(SQLite: one ``BEGIN IMMEDIATE`` transaction on the writer thread). ``fn``
is plain synchronous code and may be run again if the backend must retry.

Keys are ``protocol.identifier.handle_key`` of identifiers and prefixes.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Collection, Sequence

from protocol.quickinit import quick_init

from .model import AdminIdentity, AuditEntry, PrefixInfo


@quick_init
@dataclass(frozen=True, slots=True)
class Row:
    """One stored identifier: its key, the text as registered, its prefix's
    key, every value in one encoded blob, and its public values ready for a
    reply (``registry.codec``; a backend stores both as given)."""
    key: str
    handle: str
    prefix_key: str
    blob: bytes
    ready: bytes | None = None


@dataclass(frozen=True, slots=True)
class ReadRow:
    """An identifier as a read returns it, with its prefix's state (None
    when no prefix row governs it, as under ``0.NA``) and its reply-ready
    public values (None for a row written before the store kept them)."""
    handle: str
    blob: bytes
    prefix_state: str | None
    ready: bytes | None = None


class Tx(abc.ABC):
    """Reads and writes inside one atomic write."""

    now: float                    # the time of the transaction (unix seconds)

    @abc.abstractmethod
    def rows(self, keys: Collection[str]) -> dict[str, Row]: ...

    @abc.abstractmethod
    def put_rows(self, rows: Sequence[Row]) -> None:
        """Insert or replace (a replaced row keeps its key and its text)."""

    @abc.abstractmethod
    def delete_row(self, key: str) -> None:
        """Remove the identifier and the admin identities kept on it."""

    @abc.abstractmethod
    def prefix(self, key: str) -> PrefixInfo | None: ...

    @abc.abstractmethod
    def prefix_states(self, keys: Collection[str]) -> dict[str, str]: ...

    @abc.abstractmethod
    def put_prefix(self, key: str, info: PrefixInfo) -> None: ...

    @abc.abstractmethod
    def admins(self, handle_keys: Collection[str]) -> dict[str, list[AdminIdentity]]:
        """Admin identities kept on each of these identifiers."""

    @abc.abstractmethod
    def put_admin(self, handle_key: str, admin: AdminIdentity) -> None: ...

    @abc.abstractmethod
    def delete_admin(self, handle_key: str, index: int) -> None: ...

    @abc.abstractmethod
    def meta(self, name: str) -> Any: ...

    @abc.abstractmethod
    def set_meta(self, name: str, value: Any) -> None: ...

    @abc.abstractmethod
    def add_count(self, name: str, delta: int) -> None: ...

    @abc.abstractmethod
    def log(self, entries: Sequence[AuditEntry]) -> None:
        """Append to the audit log (which other processes read as the change
        feed); the backend numbers the entries (their ``seq`` is not read)."""


class Backend(abc.ABC):
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def transact(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(tx, *args)`` atomically; its result."""

    def batch_groups(self, keys: Sequence[str]) -> list[list[int]]:
        """How a batch of identifiers (their keys, in order) is split into
        atomic writes: lists of indexes, each written in one transaction. One
        group (the whole batch) unless the backend cannot write all at once
        (a cluster: one group per shard, so identifiers with the same key
        always share a group)."""
        return [list(range(len(keys)))]

    def failure_counts(self) -> Any:
        """Failed-login counts shared by every node on this storage
        (:class:`registry.store.FailureCounts`), or None."""
        return None

    # -- reads ------------------------------------------------------------------
    #: Whether :meth:`read_now` answers on the caller's thread (an embedded
    #: store's point read, which never waits on the network): the node then
    #: answers a cache miss without a task of its own.
    reads_inline: bool = False
    #: Reads asked for and not answered yet.
    reads_waiting: int = 0

    @abc.abstractmethod
    async def read(self, key: str) -> ReadRow | None: ...

    def read_now(self, key: str) -> ReadRow | None:
        """:meth:`read` without awaiting, for a backend that ``reads_inline``."""
        raise NotImplementedError(f"{type(self).__name__} does not read inline")

    @abc.abstractmethod
    async def read_many(self, keys: Collection[str]) -> dict[str, ReadRow]: ...

    @abc.abstractmethod
    async def read_prefix(self, key: str) -> PrefixInfo | None: ...

    @abc.abstractmethod
    async def read_home(self, prefix_key: str) -> tuple[str | None, ReadRow | None]:
        """What a miss under ``prefix_key`` needs, in one read: the prefix's
        state (None: not allocated here) and its prefix record ``0.na/<key>``."""

    def read_home_now(self, prefix_key: str) -> tuple[str | None, ReadRow | None]:
        """:meth:`read_home` without awaiting, for a backend that ``reads_inline``."""
        raise NotImplementedError(f"{type(self).__name__} does not read inline")

    @abc.abstractmethod
    async def list_prefixes(self) -> list[PrefixInfo]: ...

    @abc.abstractmethod
    async def read_admin(self, handle_key: str, index: int) -> AdminIdentity | None: ...

    @abc.abstractmethod
    async def list_keys(self, prefix_key: str, after: str | None, limit: int) -> list[tuple[str, str]]:
        """``(key, handle)`` of identifiers under ``prefix_key``, in key order,
        after the key ``after`` (None: from the start), at most ``limit``."""

    @abc.abstractmethod
    async def read_meta(self, name: str) -> Any: ...

    @abc.abstractmethod
    async def count_prefixes(self) -> int: ...

    # -- the audit log and the change feed ------------------------------------------
    @abc.abstractmethod
    async def audit(self, since_seq: int, limit: int) -> list[AuditEntry]: ...

    @abc.abstractmethod
    async def last_seq(self) -> int: ...

    @abc.abstractmethod
    def feed(self, poll_interval: float) -> AsyncIterator[list[AuditEntry] | None]:
        """Audit entries as they are appended, by anyone, from now on; None
        when the reader fell too far behind to be told what it missed."""
