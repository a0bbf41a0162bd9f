"""The Store interface every backend implements (embedded SQLite, later Redis).

All methods are coroutines so one interface serves every backend; the
embedded store answers reads inline and runs writes on one writer thread.

Write semantics (every write is atomic and appended to the audit log in the
same transaction; ``actor`` is the identity that asked, e.g.
``300:88.118.8/ADMIN`` or ``cli``):

* ``put_handle(mode="create")``  fails with HandleExists if the handle exists;
* ``put_handle(mode="replace")`` creates, or replaces every value;
* ``put_handle(mode="merge")``   adds or replaces the given indexes of an
  existing handle (HandleNotFound otherwise), other values stay;
* ``put_handle(mode="add")``     adds values to an existing handle;
  ValueExists if an index is taken (Handle opCode 102).
* ``remove_values`` removes indexes (ValuesNotFound if none of them exist);
* ``delete_handle`` removes the handle and all its values.
* ``register_batch`` applies up to thousands of create/replace in ONE
  transaction and reports per item; items that fail validation or exist
  (in create mode) are reported and skipped, the rest are committed together.

The handle's prefix must be allocated on this node and enabled
(PrefixNotFound / PrefixDisabled), except for handles under ``0.NA``, which
the node keeps for itself.

Values of SECRET_TYPES (HS_SECKEY) are encrypted under the node key before
they reach disk; ``get_handle`` returns them still encrypted and only
``admin_secret`` decrypts.
"""

from __future__ import annotations

import abc
from typing import Callable, Iterable, Literal, Sequence

from protocol.values import HandleValue

from .model import AdminIdentity, AuditEntry, HandleRecord, ItemResult, PrefixInfo

PutMode = Literal["create", "replace", "merge", "add"]
WriteListener = Callable[[Sequence[str]], None]


class Store(abc.ABC):
    """See the module docstring. Backends call :meth:`_notify_written` after
    every committed write with the identifiers it touched, so caches in the
    writing process drop them at once (other processes follow the audit feed).
    """

    _write_listeners: tuple[WriteListener, ...] = ()

    def add_write_listener(self, listener: WriteListener) -> None:
        self._write_listeners = (*self._write_listeners, listener)

    def remove_write_listener(self, listener: WriteListener) -> None:
        self._write_listeners = tuple(x for x in self._write_listeners if x is not listener)

    def _notify_written(self, handles: Sequence[str]) -> None:
        for listener in self._write_listeners:
            listener(handles)

    # -- lifecycle --------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    # -- node ---------------------------------------------------------------
    @abc.abstractmethod
    async def initialise(self, secondary_prefix: str, node_admin: AdminIdentity,
                         admin_values: Sequence[HandleValue], *, actor: str) -> None:
        """Record the node's prefix and its admin (``300:0.NA/<prefix>``) once;
        HandleExists if the node was already initialised."""

    @abc.abstractmethod
    async def secondary_prefix(self) -> str:
        """The node's own prefix (e.g. ``88.118``); NotInitialised if none."""

    # -- enterprise prefixes -----------------------------------------------
    @abc.abstractmethod
    async def create_prefix(self, info: PrefixInfo, admin: AdminIdentity,
                            admin_values: Sequence[HandleValue], *, actor: str) -> None:
        """Allocate a prefix and its admin identity (handle + values) atomically."""

    @abc.abstractmethod
    async def get_prefix(self, prefix: str) -> PrefixInfo | None: ...

    @abc.abstractmethod
    async def list_prefixes(self) -> list[PrefixInfo]: ...

    @abc.abstractmethod
    async def set_prefix_state(self, prefix: str, state: str, *, actor: str) -> PrefixInfo: ...

    # -- identifiers ---------------------------------------------------------
    @abc.abstractmethod
    async def get_handle(self, handle: str) -> HandleRecord | None:
        """Look up by identifier, compared ASCII case-insensitively."""

    @abc.abstractmethod
    async def put_handle(self, handle: str, values: Sequence[HandleValue], *,
                         mode: PutMode, actor: str) -> HandleRecord: ...

    @abc.abstractmethod
    async def remove_values(self, handle: str, indexes: Iterable[int], *, actor: str) -> HandleRecord: ...

    @abc.abstractmethod
    async def delete_handle(self, handle: str, *, actor: str) -> None: ...

    @abc.abstractmethod
    async def register_batch(self, items: Sequence[tuple[str, Sequence[HandleValue]]], *,
                             overwrite: bool, actor: str) -> list[ItemResult]: ...

    @abc.abstractmethod
    async def list_handles(self, prefix: str, *, page: int = 0, page_size: int = 1000) -> list[str]:
        """Handles under ``prefix`` in a stable order; ``page_size=0`` means all."""

    @abc.abstractmethod
    async def count_handles(self) -> int: ...

    @abc.abstractmethod
    async def count_prefixes(self) -> int: ...

    # -- admin identities ---------------------------------------------------
    @abc.abstractmethod
    async def get_admin(self, handle: str, index: int) -> AdminIdentity | None: ...

    @abc.abstractmethod
    async def admin_secret(self, handle: str, index: int) -> bytes | None:
        """The decrypted HS_SECKEY data at ``index:handle`` (for challenge-response)."""

    @abc.abstractmethod
    async def set_admin_password(self, admin: AdminIdentity, secret_value: HandleValue, *, actor: str) -> None:
        """Create or replace an admin identity with its HS_SECKEY value."""

    # -- audit and change feed ---------------------------------------------
    @abc.abstractmethod
    async def audit(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries in order; the sequence doubles as the change feed."""

    @abc.abstractmethod
    async def last_seq(self) -> int: ...
