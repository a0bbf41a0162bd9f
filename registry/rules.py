"""The registry: every backend-neutral rule, over a storage-only backend.

:class:`Registry` implements :class:`registry.store.Store` (see there for
what each write means) on top of a :class:`registry.backend.Backend`. Here,
once for every backend:

* validation of what callers hand in, before a transaction starts, so
  nothing is ever half-written (``registry.validation``);
* prefix states: a write under a prefix that is not allocated here, or is
  disabled, is refused; reads return the prefix state with the record;
* secret values (``protocol.values.is_secret_type``) are sealed under the
  node key, bound to their identifier and index, before they are stored;
* admin identities stay in step with their secret values: a removed secret
  revokes the identity, a new one re-hashes its password;
* the identifier counter, the audit log (digests of the stored encoding)
  and conditional writes (``expect=``: the digest is the record's version);
* which identifiers and prefixes each write changed, told to this process's
  write listeners before the write returns, and to other processes through
  the backend's feed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Callable, Iterable, Sequence

from protocol.codes import RC
from protocol.identifier import Handle, handle_key
from protocol.values import HandleValue, is_secret_type

from . import outbox
from .outbox import Pending
from .backend import Backend, ReadRow, Row, Tx
from .codec import decode_values, digest, encode_values, ready_values, record_digest, secret_aad
from .errors import (HandleExists, HandleNotFound, InvalidHandleError, InvalidValue, NodeKeyError, NotInitialised,
                     PrefixDisabled, PrefixExists, PrefixNotFound, RecordChanged, RegistryError, StoreUnavailable,
                     ValueExists)
from .model import (ABSENT, DISABLED, ENABLED, AdminIdentity, AuditEntry, Changes, HandleRecord, ItemResult, Page,
                    PrefixInfo, Versioned)
from .secrets import NodeKey, hash_password
from .store import Decide, FailureCounts, PutMode, Store
from .validation import (NODE_PREFIX_KEY, SizeLimits, check_admin, check_state, clean_values, is_u32, parse,
                         parse_prefix_text)

_KEY_CHECK = b"idnode node key check"
HANDLE_COUNT = "handle_count"
MAX_PAGE = 10_000
# Audit operations that change an identifier's values, and a prefix's state.
REPLACE_OPS = frozenset({"handle.replace", "handle.merge", "handle.add", "handle.modify", "handle.remove_values"})
_HANDLE_OPS = REPLACE_OPS | {"handle.create", "handle.delete"}
_PREFIX_OPS = frozenset({"prefix.create", "prefix.state"})


def _prefix_records(handles: Iterable[str]) -> list[str]:
    """The prefixes whose prefix record ``0.NA/<prefix>`` is among ``handles``:
    a change of one (a delegation) changes what every miss under it means."""
    return [h[5:] for h in handles if h[:5].lower() == "0.na/"]


class _SecretTypes:
    """Whether values hold a secret (``is_secret_type``), each type asked once
    for a batch: a batch has many values of a few types."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}

    def any(self, values: Iterable[HandleValue]) -> bool:
        known = self._known
        for v in values:
            secret = known.get(v.type)
            if secret is None:
                secret = known[v.type] = is_secret_type(v.type)
            if secret:
                return True
        return False


def changes_from_audit(entries: Iterable[AuditEntry]) -> Changes:
    """What a run of audit entries changed, for caches."""
    handles: dict[str, str] = {}            # handle -> its digest after its last change
    prefixes = []
    for e in entries:
        if e.operation in _HANDLE_OPS:
            handles.pop(e.handle, None)
            handles[e.handle] = e.after_digest
        elif e.operation in _PREFIX_OPS:
            prefixes.append(e.handle)
    return Changes(tuple(handles), tuple(prefixes + _prefix_records(handles)), versions=tuple(handles.values()))


def _handle(handle: "str | Handle") -> Handle:
    return handle if type(handle) is Handle else parse(handle)


def _record(row: ReadRow) -> HandleRecord:
    """A record read to be decided on: its values decoded once."""
    return HandleRecord(row.handle, decode_values(row.blob), row.prefix_state == DISABLED)


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError):
        raise InvalidValue(f"not a cursor this node gave out: {cursor!r}") from None


@dataclass(slots=True)
class _Work:
    """One transaction's bookkeeping: the backend's view and what changed."""
    tx: Tx
    actor: str
    handles: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)

    def log(self, operation: str, handle: str, before: str, after: str) -> None:
        self.audit.append(AuditEntry(0, self.tx.now, self.actor, operation, handle, before, after))

    def changes(self) -> Changes:
        return Changes(tuple(self.handles), tuple(self.prefixes) + tuple(_prefix_records(self.handles)))


def _resolved(row: ReadRow | None) -> HandleRecord | None:
    """A row read for resolution: its values stay in their stored form until used."""
    if row is None:
        return None
    return HandleRecord.stored(row.handle, row.blob, row.prefix_state == DISABLED, row.ready)


class Registry(Store):
    """The Store every backend shares (see the module docstring)."""

    def __init__(self, backend: Backend, node_key: NodeKey, limits: SizeLimits = SizeLimits()) -> None:
        if not isinstance(node_key, NodeKey):
            raise NodeKeyError("node_key must be a NodeKey")
        self.backend = backend
        self._key = node_key
        self.limits = limits

    def __repr__(self) -> str:
        return f"Registry({self.backend!r})"

    # -- lifecycle ------------------------------------------------------------------
    async def open(self) -> None:
        await self.backend.open()
        try:
            await self.backend.transact(self._key_check_tx)
        except BaseException:
            await self.backend.close()
            raise

    def _key_check_tx(self, tx: Tx) -> None:
        token = tx.meta("key_check")
        if token is None:
            tx.set_meta("key_check", self._key.encrypt(_KEY_CHECK, b"key_check"))
        elif not self._key.opens(token, b"key_check") or self._key.decrypt(token, b"key_check") != _KEY_CHECK:
            raise NodeKeyError(f"the node key does not open the secrets in {self.backend!r} (wrong node.key?)")

    async def close(self) -> None:
        await self.backend.close()

    def failure_counts(self) -> FailureCounts | None:
        return self.backend.failure_counts()

    # -- plumbing --------------------------------------------------------------------
    async def _write(self, fn: Callable[..., Any], actor: str, *args: Any) -> Any:
        """Run ``fn(work, *args)`` in one transaction, then tell this process's
        listeners what it changed (before the caller sees the result)."""
        def run(tx: Tx) -> tuple[Any, Changes]:
            work = _Work(tx, actor)
            result = fn(work, *args)
            if work.audit:
                tx.log(work.audit)
            changes = work.changes()
            if changes.prefixes:                # the hierarchy hears of it (registry.outbox)
                marked = {handle_key(p): p for p in work.prefixes}     # created or changed by this write
                marked.update(outbox.allocated(tx, (k for k in map(handle_key, _prefix_records(work.handles))
                                                    if k not in marked)))
                outbox.mark(tx, marked)
            return result, changes

        result, changes = await self.backend.transact(run)
        self._notify_written(changes)
        return result

    @staticmethod
    def _check_prefix(tx: Tx, h: Handle) -> None:
        if h.prefix_key == NODE_PREFIX_KEY:
            return
        info = tx.prefix(h.prefix_key)
        if info is None:
            raise PrefixNotFound(f"prefix {h.prefix} is not allocated on this node")
        if not info.enabled:
            raise PrefixDisabled(f"prefix {info.prefix} is disabled")

    @staticmethod
    def _check_expected(old: Row | None, expect: str | None, text: str) -> None:
        if expect is not None and (digest(old.blob) if old else ABSENT) != expect:
            raise RecordChanged(f"{text} changed while the request was being decided; try again")

    def _seal(self, key: str, values: Iterable[HandleValue]) -> list[HandleValue]:
        """Seal secret data; data that is already our sealed token for this place stays."""
        out = []
        for v in values:
            if is_secret_type(v.type):
                aad = secret_aad(key, v.index)
                if not self._key.opens(v.data, aad):
                    v = replace(v, data=self._key.encrypt(v.data, aad))
            out.append(v)
        return out

    def _store(self, w: _Work, h: Handle, old: Row | None, values: Iterable[HandleValue], op: str, *,
               sync_admins: bool = True) -> HandleRecord:
        tx = w.tx
        sealed = self._seal(h.key, values)
        blob = encode_values(sealed, int(tx.now))
        text = old.handle if old else h.text
        tx.put_rows([Row(h.key, text, h.prefix_key, blob, ready_values(sealed, int(tx.now)))])
        w.log(op, text, digest(old.blob) if old else "", digest(blob))
        w.handles.append(text)
        if old is None:
            tx.add_count(HANDLE_COUNT, 1)
        elif sync_admins:
            self._sync_admins(w, h.key, old.blob, blob)
        return HandleRecord(text, decode_values(blob))

    def _sync_admins(self, w: _Work, key: str, old_blob: bytes, new_blob: bytes,
                     admins: list[AdminIdentity] | None = None) -> None:
        """Keep admin identities in step with their secret values.

        A removed secret revokes the identity; a new secret (given in plain
        text) re-hashes its password; an unchanged one leaves it alone.
        """
        if admins is None:
            admins = w.tx.admins([key]).get(key, [])
        if not admins:
            return
        old = {v.index: v for v in decode_values(old_blob)}
        new = {v.index: v for v in decode_values(new_blob)}
        for admin in admins:
            idx = admin.index
            before = record_digest(admin.handle, idx, admin.scope, admin.password_hash)
            n, o = new.get(idx), old.get(idx)
            if n is None or not is_secret_type(n.type):
                w.tx.delete_admin(key, idx)
                w.log("admin.revoke", admin.handle, before, "")
                continue
            if o is not None and o.data == n.data:
                continue
            aad = secret_aad(key, idx)
            plain = self._key.decrypt(n.data, aad)
            if o is not None and is_secret_type(o.type) and self._key.opens(o.data, aad) \
                    and hmac.compare_digest(self._key.decrypt(o.data, aad), plain):
                continue
            phash = hash_password(plain)
            w.tx.put_admin(key, replace(admin, password_hash=phash))
            w.log("admin.set", admin.handle, before, record_digest(admin.handle, idx, admin.scope, phash))

    def _put_admin(self, w: _Work, admin: AdminIdentity, h: Handle, text: str, scope: str | None) -> None:
        """Record the identity on the identifier ``text`` (as registered)."""
        old = next((a for a in w.tx.admins([h.key]).get(h.key, []) if a.index == admin.index), None)
        new = AdminIdentity(text, admin.index, scope, admin.password_hash)
        w.tx.put_admin(h.key, new)
        w.log("admin.set", text,
              record_digest(old.handle, old.index, old.scope, old.password_hash) if old else "",
              record_digest(text, admin.index, scope, admin.password_hash))

    # -- node ----------------------------------------------------------------------------
    async def initialise(self, secondary_prefix: str, node_admin: AdminIdentity,
                         admin_values: Sequence[HandleValue], *, actor: str) -> None:
        prefix = parse_prefix_text(secondary_prefix)
        values = clean_values(admin_values, self.limits)
        h = check_admin(node_admin, values)
        if h.key != handle_key(f"0.NA/{prefix}"):
            raise InvalidHandleError(f"the node admin must be 0.NA/{prefix}, not {h.text}")
        if node_admin.scope is not None:
            raise InvalidValue("the node admin has no prefix scope")
        await self._write(self._initialise_tx, actor, prefix, node_admin, h, values)

    def _initialise_tx(self, w: _Work, prefix: str, admin: AdminIdentity, h: Handle,
                       values: list[HandleValue]) -> None:
        if w.tx.meta("secondary_prefix") is not None:
            raise HandleExists("the node is already initialised")
        if w.tx.rows([h.key]):
            raise HandleExists(f"{h.text} already exists")
        w.tx.set_meta("secondary_prefix", prefix)
        w.log("node.initialise", prefix, "", record_digest(prefix))
        record = self._store(w, h, None, values, "handle.create")
        self._put_admin(w, admin, h, record.handle, None)

    async def secondary_prefix(self) -> str:
        prefix = await self.backend.read_meta("secondary_prefix")
        if prefix is None:
            raise NotInitialised(f"no node is initialised in {self.backend!r} (run `idnode init`)")
        return prefix

    # -- enterprise prefixes -------------------------------------------------------------
    async def create_prefix(self, info: PrefixInfo, admin: AdminIdentity | str,
                            admin_values: Sequence[HandleValue], *, actor: str) -> None:
        if type(info) is not PrefixInfo:
            raise InvalidValue("info must be a PrefixInfo")
        prefix = parse_prefix_text(info.prefix)
        key = handle_key(prefix)
        if key == NODE_PREFIX_KEY or key.startswith(NODE_PREFIX_KEY + "."):
            raise InvalidHandleError(f"{prefix} is reserved for the node")
        check_state(info.state)
        if not all(isinstance(x, str) for x in (info.owner, info.credit_code, info.contact)) \
                or type(info.created) is not int:
            raise InvalidValue("prefix fields have the wrong type")
        values = clean_values(admin_values, self.limits)
        if isinstance(admin, str):                  # proven by its keys: no admin row
            h, admin = parse(admin), None
        else:
            h = check_admin(admin, values)
            if not isinstance(admin.scope, str) or handle_key(admin.scope) != key:
                raise InvalidValue(f"admin scope must be {prefix}")
        if h.prefix_key != key:
            raise InvalidHandleError(f"admin {h.text} is not under prefix {prefix}")
        await self._write(self._create_prefix_tx, actor, replace(info, prefix=prefix), key, admin, h, values)

    def _create_prefix_tx(self, w: _Work, info: PrefixInfo, key: str, admin: AdminIdentity | None, h: Handle,
                          values: list[HandleValue]) -> None:
        if w.tx.prefix(key) is not None:
            raise PrefixExists(f"prefix {info.prefix} is already allocated")
        info = replace(info, created=info.created or int(w.tx.now))
        w.tx.put_prefix(key, info)
        w.log("prefix.create", info.prefix, "", self._prefix_digest(info))
        w.prefixes.append(info.prefix)          # misses under it are answered differently from now on
        # No write lands under a prefix that is not allocated, so a row here is
        # what a creation interrupted between its two writes on a cluster left
        # behind (registry.redis_backend): this creation takes it over.
        old = w.tx.rows([h.key]).get(h.key)
        record = self._store(w, h, old, values, "handle.create" if old is None else "handle.replace")
        if admin is not None:
            self._put_admin(w, admin, h, record.handle, info.prefix)

    @staticmethod
    def _prefix_digest(info: PrefixInfo) -> str:
        return record_digest(info.prefix, info.owner, info.credit_code, info.contact, info.state, info.created)

    async def get_prefix(self, prefix: str) -> PrefixInfo | None:
        return await self.backend.read_prefix(handle_key(parse_prefix_text(prefix)))

    async def list_prefixes(self) -> list[PrefixInfo]:
        return await self.backend.list_prefixes()

    async def set_prefix_state(self, prefix: str, state: str, *, actor: str) -> PrefixInfo:
        key = handle_key(parse_prefix_text(prefix))
        return await self._write(self._set_state_tx, actor, key, check_state(state))

    def _set_state_tx(self, w: _Work, key: str, state: str) -> PrefixInfo:
        old = w.tx.prefix(key)
        if old is None:
            raise PrefixNotFound(f"prefix {key} is not allocated on this node")
        new = replace(old, state=state)
        w.tx.put_prefix(key, new)
        w.log("prefix.state", old.prefix, self._prefix_digest(old), self._prefix_digest(new))
        w.prefixes.append(old.prefix)
        return new

    async def count_prefixes(self) -> int:
        return await self.backend.count_prefixes()

    # -- the outbox (registry.outbox) ----------------------------------------------------
    async def outbox(self) -> "dict[str, Pending]":
        return outbox.read(await self.backend.read_meta(outbox.META))

    async def outbox_settle(self, key: str, version: int) -> bool:
        return await self.backend.transact(outbox.settle, key, version)

    async def outbox_failed(self, key: str, version: int, error: str, due: float) -> None:
        await self.backend.transact(outbox.failed, key, version, error, due)

    async def outbox_lease(self, owner: str, seconds: float) -> float:
        return await self.backend.transact(outbox.take_lease, owner, seconds)

    async def outbox_mark_all(self) -> int:
        prefixes = {handle_key(info.prefix): info.prefix for info in await self.backend.list_prefixes()}
        await self.backend.transact(outbox.mark, prefixes)
        return len(prefixes)

    # -- identifiers ---------------------------------------------------------------------
    @property
    def reads_inline(self) -> bool:               # type: ignore[override]
        return self.backend.reads_inline

    def reads_waiting(self) -> int:
        return self.backend.reads_waiting

    async def home(self, prefix_key: str) -> tuple[str | None, HandleRecord | None]:
        state, row = await self.backend.read_home(prefix_key)
        return state, _resolved(row)

    def home_now(self, prefix_key: str) -> tuple[str | None, HandleRecord | None]:
        state, row = self.backend.read_home_now(prefix_key)
        return state, _resolved(row)

    async def get_handle(self, handle: "str | Handle") -> HandleRecord | None:
        return _resolved(await self.backend.read(_handle(handle).key))

    def get_handle_now(self, handle: Handle) -> HandleRecord | None:
        return _resolved(self.backend.read_now(handle.key))

    async def get_versioned(self, handle: "str | Handle") -> Versioned:
        row = await self.backend.read(_handle(handle).key)
        if row is None:
            return Versioned(None, ABSENT)
        return Versioned(_record(row), digest(row.blob))

    async def get_many(self, handles: Sequence[Handle]) -> dict[str, Versioned]:
        rows = await self.backend.read_many({h.key for h in handles})
        out = {k: Versioned(_record(r), digest(r.blob)) for k, r in rows.items()}
        for h in handles:
            out.setdefault(h.key, Versioned(None, ABSENT))
        return out

    async def put_handle(self, handle: "str | Handle", values: Sequence[HandleValue], *, mode: PutMode,
                         actor: str, expect: str | None = None, operation: str = "handle.replace") -> HandleRecord:
        if mode not in ("create", "replace"):
            raise InvalidValue(f"unknown put mode {mode!r}")
        if operation not in REPLACE_OPS:
            raise InvalidValue(f"unknown operation {operation!r}")
        h = _handle(handle)
        clean = clean_values(values, self.limits)
        return await self._write(self._put_tx, actor, h, clean, mode, expect, operation)

    def _put_tx(self, w: _Work, h: Handle, values: list[HandleValue], mode: str,
                expect: str | None, operation: str) -> HandleRecord:
        self._check_prefix(w.tx, h)
        old = w.tx.rows([h.key]).get(h.key)
        self._check_expected(old, expect, h.text)
        if old is None:
            return self._store(w, h, None, values, "handle.create")
        if mode == "create":
            raise HandleExists(f"{old.handle} already exists")
        return self._store(w, h, old, values, operation)

    async def delete_handle(self, handle: "str | Handle", *, actor: str, expect: str | None = None) -> None:
        await self._write(self._delete_tx, actor, _handle(handle), expect)

    def _delete_tx(self, w: _Work, h: Handle, expect: str | None) -> None:
        self._check_prefix(w.tx, h)
        old = w.tx.rows([h.key]).get(h.key)
        self._check_expected(old, expect, h.text)
        if old is None:
            raise HandleNotFound(f"{h.text} does not exist")
        for admin in w.tx.admins([h.key]).get(h.key, []):
            w.log("admin.revoke", old.handle,
                  record_digest(old.handle, admin.index, admin.scope, admin.password_hash), "")
        w.tx.delete_row(h.key)
        w.log("handle.delete", old.handle, digest(old.blob), "")
        w.handles.append(old.handle)
        w.tx.add_count(HANDLE_COUNT, -1)

    async def register_batch(self, items: Sequence[tuple[str, Sequence[HandleValue]]], *, overwrite: bool,
                             actor: str, expect: Sequence[str | None] | None = None,
                             decide: Decide | None = None) -> list[ItemResult]:
        items = list(items)
        if expect is not None and len(expect) != len(items):
            raise InvalidValue("expect must name one version per item")
        results: list[ItemResult | None] = [None] * len(items)
        good: list[tuple[int, str, Handle, list[HandleValue], str | None]] = []
        for i, item in enumerate(items):       # validate everything before the transaction
            raw = item[0] if isinstance(item, (tuple, list)) and item else item
            label = raw if isinstance(raw, str) else raw.text if type(raw) is Handle else repr(raw)
            try:
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise InvalidValue("each item must be (handle, values)")
                good.append((i, label, _handle(raw), clean_values(item[1], self.limits),
                             expect[i] if expect is not None else None))
            except RegistryError as exc:
                results[i] = ItemResult(label, exc.code, str(exc))
        if good:        # one transaction per group (the whole batch unless the backend splits it)
            groups = self.backend.batch_groups([g[2].key for g in good])
            if len(groups) == 1:
                await self._write(self._batch_tx, actor, good, results, bool(overwrite), decide)
                return results  # type: ignore[return-value]

            async def write(part: list) -> None:
                try:
                    await self._write(self._batch_tx, actor, part, results, bool(overwrite), decide)
                except StoreUnavailable as exc:     # the other groups stand: say which items did not
                    for i, label, *_ in part:
                        results[i] = ItemResult(label, exc.code, str(exc))
            # Groups share no identifier, so they commit side by side (on the backend's writers).
            outcomes = await asyncio.gather(*(write([good[i] for i in group]) for group in groups),
                                            return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return results  # type: ignore[return-value]

    def _batch_tx(self, w: _Work, good: list, results: list, overwrite: bool, decide: Decide | None) -> None:
        """Apply the items in order: a later item sees an earlier one of the same batch."""
        tx = w.tx
        prefix_keys = [h.prefix_key for _, _, h, _, _ in good]
        states = tx.prefix_states(set(prefix_keys) - {NODE_PREFIX_KEY})
        states[NODE_PREFIX_KEY] = ENABLED
        existing = tx.rows({h.key for _, _, h, _, _ in good})
        current: dict[str, Row] = dict(existing)
        rows: list[Row] = []
        audit, handles, secret_types = w.audit, w.handles, _SecretTypes()
        added, stamp, now, actor, success = 0, int(tx.now), tx.now, w.actor, RC.SUCCESS
        for (i, label, h, values, expect), prefix_key in zip(good, prefix_keys):
            state = states.get(prefix_key)
            if state != ENABLED:
                exc: RegistryError = (PrefixNotFound(f"prefix {h.prefix} is not allocated on this node")
                                      if state is None else PrefixDisabled(f"prefix {h.prefix} is disabled"))
                results[i] = ItemResult(label, exc.code, str(exc))
                continue
            key = h.key
            old = current.get(key)
            if expect is not None and (digest(old.blob) if old else ABSENT) != expect:
                results[i] = ItemResult(label, RC.SERVER_BUSY, f"{h.text} changed while the batch was "
                                                               "being decided; try again")
                continue
            if old is not None and not overwrite:
                results[i] = ItemResult(label, RC.HANDLE_ALREADY_EXISTS, f"{old.handle} already exists")
                continue
            if decide is not None:
                outcome = decide(decode_values(old.blob) if old is not None else None, values)
                if type(outcome) is tuple:
                    results[i] = ItemResult(label, outcome[0], f"{h.text}: {outcome[1]}")
                    continue
                values = outcome                 # made of values already checked
            if secret_types.any(values):
                values = self._seal(key, values)
            blob = encode_values(values, stamp)
            if old is None:
                text = h.text
                added += 1
                audit.append(AuditEntry(0, now, actor, "handle.create", text, "", digest(blob)))
            else:
                text = old.handle
                audit.append(AuditEntry(0, now, actor, "handle.replace", text, digest(old.blob),
                                        digest(blob)))
            row = Row(key, text, prefix_key, blob, ready_values(values, stamp))
            rows.append(row)
            current[key] = row
            handles.append(text)
            results[i] = ItemResult(label, success)
        tx.put_rows(rows)
        tx.add_count(HANDLE_COUNT, added)
        if overwrite and existing:
            for key, admins in tx.admins(existing.keys()).items():
                self._sync_admins(w, key, existing[key].blob, current[key].blob, admins)

    async def list_handles(self, prefix: str, *, cursor: str | None = None, limit: int = 1000) -> Page:
        key = handle_key(parse_prefix_text(prefix))
        if type(limit) is not int or not 0 < limit <= MAX_PAGE:
            raise InvalidValue(f"limit must be 1..{MAX_PAGE}")
        after = None
        if cursor is not None:
            after = decode_cursor(cursor)
            if not after.startswith(key + "/"):
                raise InvalidValue(f"the cursor does not belong to a listing of {prefix}")
        rows = await self.backend.list_keys(key, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(tuple(h for _, h in rows), encode_cursor(rows[-1][0]) if more else None)

    async def count_handles(self) -> int:
        return await self.backend.read_meta(HANDLE_COUNT) or 0

    # -- admin identities -----------------------------------------------------------------
    async def get_admin(self, handle: str, index: int) -> AdminIdentity | None:
        if not is_u32(index):
            raise InvalidValue(f"admin index {index!r} out of range")
        return await self.backend.read_admin(parse(handle).key, index)

    async def admin_secret(self, handle: str, index: int) -> bytes | None:
        if not is_u32(index):
            raise InvalidValue(f"admin index {index!r} out of range")
        h = parse(handle)
        row = await self.backend.read(h.key)
        if row is None:
            return None
        for v in decode_values(row.blob):
            if v.index == index and is_secret_type(v.type):
                return self._key.decrypt(v.data, secret_aad(h.key, index))
        return None

    async def set_admin_password(self, admin: AdminIdentity, secret_value: HandleValue, *, actor: str) -> None:
        h = check_admin(admin)
        (value,) = clean_values([secret_value], self.limits)
        if not is_secret_type(value.type) or value.index != admin.index:
            raise InvalidValue(f"the secret must be an HS_SECKEY value at index {admin.index}")
        if (admin.scope is None) != (h.prefix_key == NODE_PREFIX_KEY):
            raise InvalidValue("only 0.NA admins have no scope, and they have none")
        if admin.scope is not None and (not isinstance(admin.scope, str)
                                        or handle_key(admin.scope) != h.prefix_key):
            raise InvalidValue(f"admin {h.text} must have scope {h.prefix}")
        await self._write(self._set_admin_tx, actor, admin, h, value)

    def _set_admin_tx(self, w: _Work, admin: AdminIdentity, h: Handle, value: HandleValue) -> None:
        scope = None        # a disabled prefix may still rotate its secret (e.g. after a leak)
        if admin.scope is not None:
            info = w.tx.prefix(h.prefix_key)
            if info is None:
                raise PrefixNotFound(f"prefix {h.prefix} is not allocated on this node")
            scope = info.prefix
        old = w.tx.rows([h.key]).get(h.key)
        if old is None:
            record = self._store(w, h, None, [value], "handle.create")
        else:
            current = {v.index: v for v in decode_values(old.blob)}
            held = current.get(value.index)
            if held is not None and not is_secret_type(held.type):
                raise ValueExists(f"{value.index}:{old.handle} holds a {held.type} value, not a secret: "
                                  "it has no secret to replace")
            current[value.index] = value
            record = self._store(w, h, old, [current[i] for i in sorted(current)], "handle.merge",
                                 sync_admins=False)
        self._put_admin(w, admin, h, record.handle, scope)

    # -- audit and change feed -----------------------------------------------------------
    async def changes(self, poll_interval: float) -> AsyncIterator[Changes]:
        async for entries in self.backend.feed(poll_interval):
            if entries is None:
                yield Changes(everything=True)
                continue
            changes = changes_from_audit(entries)
            if changes:
                yield changes

    async def audit(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        if type(since_seq) is not int or type(limit) is not int or limit < 0:
            raise InvalidValue("since_seq and limit must be integers, limit >= 0")
        return await self.backend.audit(since_seq, limit)

    async def last_seq(self) -> int:
        return await self.backend.last_seq()
