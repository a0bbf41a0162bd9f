"""What the rest of the node asks of the registry, split by concern.

* :class:`NodeStore`     the node's own prefix and the enterprise prefixes;
* :class:`HandleStore`   identifiers and their values;
* :class:`AdminStore`    admin identities and their secrets;
* :class:`ChangeFeed`    what changed, for caches (in this process and in others).

:class:`Store` is all four. :class:`registry.rules.Registry` is the one
implementation: it holds every backend-neutral rule and keeps its data in a
:class:`registry.backend.Backend` (one module per backend), which is storage
only. ``registry.open_store(url, ...)`` picks the backend.

Writes (every write is atomic and appended to the audit log with it;
``actor`` is who asked, e.g. ``300:88.118.8/ADMIN`` or ``cli``):

* ``put_handle(mode="create")``   HandleExists if the identifier exists;
* ``put_handle(mode="replace")``  creates, or replaces every value;
* ``delete_handle``               removes the identifier and its values;
* ``register_batch``              many create/replace at once, reported per
  item; one transaction on the embedded store.

``expect=`` makes a write conditional: it goes through only if the record is
still the version read with :meth:`HandleStore.get_versioned`
(:data:`registry.model.ABSENT` for "does not exist"), else RecordChanged.
Callers that decide on the current values (permissions, merges) read, decide,
and write with ``expect``, so no decision is ever made on stale values.

An identifier's prefix must be allocated on this node and enabled
(PrefixNotFound / PrefixDisabled), except under ``0.NA``, which the node
keeps for itself. Values of a secret type (``protocol.values.is_secret_type``)
are sealed under the node key before they are stored and stay sealed in
every record handed out; only :meth:`AdminStore.admin_secret` opens one.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, AsyncIterator, Callable, Literal, Protocol, Sequence

from protocol.identifier import Handle
from protocol.values import HandleValue

from .model import AdminIdentity, AuditEntry, Changes, HandleRecord, ItemResult, Page, PrefixInfo, Versioned

PutMode = Literal["create", "replace"]
Decide = Callable[[tuple[HandleValue, ...] | None, list[HandleValue]], "list[HandleValue] | tuple[int, str]"]
WriteListener = Callable[[Changes], None]

if TYPE_CHECKING:
    from .outbox import Pending


class NodeStore(abc.ABC):
    @abc.abstractmethod
    async def initialise(self, secondary_prefix: str, node_admin: AdminIdentity,
                         admin_values: Sequence[HandleValue], *, actor: str) -> None:
        """Record the node's prefix and its admin (``300:0.NA/<prefix>``) once;
        HandleExists if the node was already initialised."""

    @abc.abstractmethod
    async def secondary_prefix(self) -> str:
        """The node's own prefix (e.g. ``88.118``); NotInitialised if none."""

    @abc.abstractmethod
    async def create_prefix(self, info: PrefixInfo, admin: AdminIdentity | str,
                            admin_values: Sequence[HandleValue], *, actor: str) -> None:
        """Allocate a prefix and its admin identity (handle + values) atomically.

        ``admin`` is the identity a secret proves (kept with its hash; the
        values hold its HS_SECKEY), or the admin identifier's name alone for
        an identity its HS_PUBKEY values prove (no admin row: nothing to hash)."""

    @abc.abstractmethod
    async def get_prefix(self, prefix: str) -> PrefixInfo | None: ...

    @abc.abstractmethod
    async def list_prefixes(self) -> list[PrefixInfo]: ...

    @abc.abstractmethod
    async def set_prefix_state(self, prefix: str, state: str, *, actor: str) -> PrefixInfo: ...

    @abc.abstractmethod
    async def count_prefixes(self) -> int: ...

    # The outbox of changes to publish to the top-level node (registry.outbox).
    @abc.abstractmethod
    async def outbox(self) -> "dict[str, Pending]":
        """The prefixes marked, by key."""

    @abc.abstractmethod
    async def outbox_settle(self, key: str, version: int) -> bool:
        """Unmark the prefix published at ``version``, unless it changed since (then False)."""

    @abc.abstractmethod
    async def outbox_failed(self, key: str, version: int, error: str, due: float) -> None: ...

    @abc.abstractmethod
    async def outbox_lease(self, owner: str, seconds: float) -> float:
        """Take or renew the lease that makes ``owner`` the one publisher on
        this store (registry.outbox.take_lease): until when it holds it, 0 if not."""

    @abc.abstractmethod
    async def outbox_mark_all(self) -> int:
        """Mark every prefix allocated here (to publish them all again); how many."""


class HandleStore(abc.ABC):
    #: Whether :meth:`get_handle_now` works: the backend reads on the caller's thread.
    reads_inline: bool = False

    def reads_waiting(self) -> int:
        """Reads sent to the store and not answered yet (a backend that reads
        over the network bounds them; a read past the bound is refused with
        StoreUnavailable at once)."""
        return 0

    @abc.abstractmethod
    async def get_handle(self, handle: "str | Handle") -> HandleRecord | None:
        """Look up by identifier (text, or an already parsed Handle), compared
        ASCII case-insensitively."""

    async def home(self, prefix_key: str) -> tuple[str | None, HandleRecord | None]:
        """What a miss under the prefix ``prefix_key`` needs: its state (None:
        not allocated here) and its prefix record ``0.NA/<prefix>`` (None: none)."""
        raise NotImplementedError

    def home_now(self, prefix_key: str) -> tuple[str | None, HandleRecord | None]:
        """:meth:`home` without awaiting, when ``reads_inline``."""
        raise NotImplementedError(f"{type(self).__name__} does not read inline")

    def get_handle_now(self, handle: Handle) -> HandleRecord | None:
        """:meth:`get_handle` without awaiting, when ``reads_inline``."""
        raise NotImplementedError(f"{type(self).__name__} does not read inline")

    @abc.abstractmethod
    async def get_versioned(self, handle: "str | Handle") -> Versioned:
        """The record and its version, for a conditional write."""

    @abc.abstractmethod
    async def get_many(self, handles: Sequence[Handle]) -> dict[str, Versioned]:
        """Several records by key (``Handle.key``) in one read."""

    @abc.abstractmethod
    async def put_handle(self, handle: "str | Handle", values: Sequence[HandleValue], *, mode: PutMode,
                         actor: str, expect: str | None = None, operation: str = "handle.replace") -> HandleRecord:
        """``operation`` names a replace in the audit log (``handle.add``,
        ``handle.modify``, ``handle.remove_values``: what the caller did)."""

    @abc.abstractmethod
    async def delete_handle(self, handle: "str | Handle", *, actor: str, expect: str | None = None) -> None: ...

    @abc.abstractmethod
    async def register_batch(self, items: Sequence[tuple["str | Handle", Sequence[HandleValue]]], *,
                             overwrite: bool, actor: str, expect: Sequence[str | None] | None = None,
                             decide: Decide | None = None) -> list[ItemResult]:
        """Create (or with ``overwrite`` replace) many identifiers; one result
        per item, in order. Items that fail validation, exist (without
        overwrite), fall under a prefix not served here or changed since their
        ``expect`` version are reported and skipped; the rest are written.
        ``decide(old values or None, new values)``, run in the transaction on
        each item about to be written, returns the values to write or
        ``(code, message)`` to skip the item: a caller's rule that needs only
        the record as it is."""

    @abc.abstractmethod
    async def list_handles(self, prefix: str, *, cursor: str | None = None, limit: int = 1000) -> Page:
        """Identifiers under ``prefix`` in a stable order, ``limit`` at a time;
        pass a page's ``next`` as ``cursor`` for the following one."""

    @abc.abstractmethod
    async def count_handles(self) -> int: ...


class AdminStore(abc.ABC):
    @abc.abstractmethod
    async def get_admin(self, handle: str, index: int) -> AdminIdentity | None: ...

    @abc.abstractmethod
    async def admin_secret(self, handle: str, index: int) -> bytes | None:
        """The opened secret value at ``index:handle`` (None if there is none)."""

    @abc.abstractmethod
    async def set_admin_password(self, admin: AdminIdentity, secret_value: HandleValue, *, actor: str) -> None:
        """Create or replace an admin identity with its secret value; ValueExists
        if its index holds a value that is not a secret (a public key)."""


class ChangeFeed(abc.ABC):
    """Writes in this process are told to the listeners synchronously, before
    the write returns; writes anywhere (other processes on the same store)
    come through :meth:`changes`."""

    _write_listeners: tuple[WriteListener, ...] = ()

    def add_write_listener(self, listener: WriteListener) -> None:
        self._write_listeners = (*self._write_listeners, listener)

    def remove_write_listener(self, listener: WriteListener) -> None:
        self._write_listeners = tuple(x for x in self._write_listeners if x != listener)

    def _notify_written(self, changes: Changes) -> None:
        if changes:
            for listener in self._write_listeners:
                listener(changes)

    @abc.abstractmethod
    def changes(self, poll_interval: float) -> AsyncIterator[Changes]:
        """Every change from now on, whoever made it, as it is seen (the
        embedded store looks every ``poll_interval`` seconds)."""

    @abc.abstractmethod
    async def audit(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries in order."""

    @abc.abstractmethod
    async def last_seq(self) -> int: ...


class FailureCounts(Protocol):
    """Failed logins per source, counted where every node instance sharing the
    store sees them (the lock-out policy is :mod:`resolver.core.lockout`)."""

    async def failures(self, source: str, now: int, window: int) -> int: ...

    async def add_failure(self, source: str, now: int, window: int) -> int: ...


class Store(NodeStore, HandleStore, AdminStore, ChangeFeed):
    @abc.abstractmethod
    async def open(self) -> None: ...

    def failure_counts(self) -> FailureCounts | None:
        """Where failed logins are counted across the instances sharing this
        store; None when one node's own memory is the whole picture (an
        embedded store is one machine's)."""
        return None

    @abc.abstractmethod
    async def close(self) -> None: ...
