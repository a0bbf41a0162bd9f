"""The embedded store: one SQLite file in WAL mode.

One row per identifier: the ASCII-lowercased key (the b-tree key of a
WITHOUT ROWID table), the handle as registered, its prefix key, and every
value in one CBOR blob, so a resolution is one primary-key lookup and a bulk
import is one ``executemany``. Secret values (HS_SECKEY) are sealed under the
node key before they are encoded, bound to ``handle key + index``.

Reads run inline on the caller's thread over one read-only connection; writes
run on one writer thread with its own connection, so the event loop never
waits on fsync. Every write is one ``BEGIN IMMEDIATE`` transaction holding the
change, its audit rows (the change feed) and the handle counter; validation
happens before it, so nothing is ever half-written. ``synchronous=FULL``:
an acknowledged write survives a crash or power loss.

Audit digests are the SHA-256 (hex) of the stored encoding (values blob,
prefix record or admin record); "" means absent.
"""

from __future__ import annotations

import asyncio
import hmac
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from protocol.codes import RC
from protocol.identifier import Handle, handle_key
from protocol.values import SECRET_TYPES, HandleValue

from .codec import (NODE_PREFIX_KEY, check_admin, check_state, clean_values, decode_values, digest,
                    encode_values, is_u32, parse, parse_prefix_text, record_digest, secret_aad)
from .errors import (HandleExists, HandleNotFound, InvalidHandleError, InvalidValue, NodeKeyError,
                     NotInitialised, PrefixDisabled, PrefixExists, PrefixNotFound, RegistryError,
                     StoreUnavailable, ValueExists, ValuesNotFound)
from .model import AdminIdentity, AuditEntry, HandleRecord, ItemResult, PrefixInfo
from .secrets import NodeKey, hash_password
from .sqlite_schema import SCHEMA_VERSION, db_error, migrate
from .store import PutMode, Store

__all__ = ["SQLiteStore", "SCHEMA_VERSION", "migrate"]

_CHUNK = 500  # keys per "IN (...)" query
_KEY_CHECK = b"idnode node key check"

_UPSERT = ("INSERT INTO handles (key, handle, prefix_key, vals, updated) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT (key) DO UPDATE SET vals = excluded.vals, updated = excluded.updated")
_AUDIT = ("INSERT INTO audit (at, actor, operation, handle, before_digest, after_digest) "
          "VALUES (?, ?, ?, ?, ?, ?)")


class SQLiteStore(Store):
    """The embedded Store backend (see the module docstring)."""

    def __init__(self, path: str | Path, node_key: NodeKey, *, busy_timeout: float = 5.0) -> None:
        if not isinstance(node_key, NodeKey):
            raise NodeKeyError("node_key must be a NodeKey")
        self.path = Path(path)
        self._key = node_key
        self._busy_timeout = busy_timeout
        self._reader: sqlite3.Connection | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._read_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- lifecycle --------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            # A larger page cache and memory-mapped reads keep cold lookups off
            # read() system calls once the file is in the OS page cache.
            for pragma in (f"busy_timeout = {int(self._busy_timeout * 1000)}", "journal_mode = WAL",
                           "synchronous = FULL", "foreign_keys = ON", "cache_size = -65536",
                           "mmap_size = 2147483648"):
                conn.execute(f"PRAGMA {pragma}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_writer(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self.path.parent}: {exc.strerror}") from None
        conn = self._connect()
        try:
            migrate(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta (name, value) VALUES ('key_check', ?)",
                                 (self._key.encrypt(_KEY_CHECK, b"key_check"),))
                elif self._key.decrypt(row[0], b"key_check") != _KEY_CHECK:
                    raise NodeKeyError("the node key does not match this store")
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except NodeKeyError:
            conn.close()
            raise NodeKeyError(f"the node key does not open the secrets in {self.path} "
                               "(wrong node.key?)") from None
        except BaseException:
            conn.close()
            raise
        self._writer_conn = conn

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="idnode-sqlite-writer")
        try:
            await self._run(self._open_writer)
            try:
                self._reader = self._connect()
                self._reader.execute("PRAGMA query_only = ON")
            except sqlite3.Error as exc:
                raise db_error(exc) from None
        except BaseException:
            await self.close()
            raise

    def _close_writer(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(writer, self._close_writer)
            finally:
                writer.shutdown(wait=True)
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # -- plumbing -------------------------------------------------------------------
    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._writer is None:
            raise StoreUnavailable("the store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)
        except sqlite3.Error as exc:
            raise db_error(exc) from None

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(conn, now, *args)`` in one transaction on the writer thread,
        then tell the write listeners which identifiers it touched."""
        result, touched = await self._run(self._transaction, fn, args)
        if touched:
            self._notify_written(touched)
        return result

    def _transaction(self, fn: Callable[..., Any], args: tuple) -> tuple[Any, list[str]]:
        conn = self._writer_conn
        if conn is None:
            raise StoreUnavailable("the store is not open")
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
            result = fn(conn, time.time(), *args)
            touched = [h for (h,) in conn.execute("SELECT handle FROM audit WHERE seq > ?", (row[0] if row else 0,))]
            conn.execute("COMMIT")
            return result, touched
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _read(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._read_lock:
            if self._reader is None:
                raise StoreUnavailable("the store is not open")
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise db_error(exc) from None

    # -- writer-side helpers (inside a transaction) --------------------------------------
    @staticmethod
    def _row(conn: sqlite3.Connection, key: str) -> tuple[str, bytes] | None:
        return conn.execute("SELECT handle, vals FROM handles WHERE key = ?", (key,)).fetchone()

    @staticmethod
    def _check_prefix(conn: sqlite3.Connection, h: Handle) -> None:
        if h.prefix_key == NODE_PREFIX_KEY:
            return
        row = conn.execute("SELECT state FROM prefixes WHERE key = ?", (h.prefix_key,)).fetchone()
        if row is None:
            raise PrefixNotFound(f"prefix {h.prefix} is not allocated on this node")
        if row[0] != "enabled":
            raise PrefixDisabled(f"prefix {h.prefix} is disabled")

    def _seal(self, key: str, values: Iterable[HandleValue]) -> list[HandleValue]:
        """Encrypt secret data; data that is already our sealed token for this place stays."""
        out = []
        for v in values:
            if v.type in SECRET_TYPES:
                aad = secret_aad(key, v.index)
                if not self._key.opens(v.data, aad):
                    v = replace(v, data=self._key.encrypt(v.data, aad))
            out.append(v)
        return out

    @staticmethod
    def _count(conn: sqlite3.Connection, delta: int) -> None:
        if delta:
            conn.execute("UPDATE meta SET value = value + ? WHERE name = 'handle_count'", (delta,))

    def _store(self, conn: sqlite3.Connection, now: float, actor: str, h: Handle,
               old: tuple[str, bytes] | None, values: Iterable[HandleValue], op: str,
               sync_admins: bool = True) -> HandleRecord:
        blob = encode_values(self._seal(h.key, values), int(now))
        text = old[0] if old else h.text
        conn.execute(_UPSERT, (h.key, text, h.prefix_key, blob, now))
        conn.execute(_AUDIT, (now, actor, op, text, digest(old[1]) if old else "", digest(blob)))
        if old is None:
            self._count(conn, 1)
        elif sync_admins:
            self._sync_admins(conn, now, actor, h.key, old[1], blob)
        return HandleRecord(text, decode_values(blob))

    def _sync_admins(self, conn: sqlite3.Connection, now: float, actor: str, key: str,
                     old_blob: bytes, new_blob: bytes) -> None:
        """Keep admin identities in step with their secret values.

        A removed secret revokes the identity; a new secret (given in plain
        text) re-hashes its password; an unchanged one leaves it alone.
        """
        rows = conn.execute("SELECT idx, handle, scope, password_hash FROM admins WHERE handle_key = ?",
                            (key,)).fetchall()
        if not rows:
            return
        old = {v.index: v for v in decode_values(old_blob)}
        new = {v.index: v for v in decode_values(new_blob)}
        for idx, handle, scope, phash in rows:
            before = record_digest(handle, idx, scope, phash)
            n, o = new.get(idx), old.get(idx)
            if n is None or n.type not in SECRET_TYPES:
                conn.execute("DELETE FROM admins WHERE handle_key = ? AND idx = ?", (key, idx))
                conn.execute(_AUDIT, (now, actor, "admin.revoke", handle, before, ""))
                continue
            if o is not None and o.data == n.data:
                continue
            aad = secret_aad(key, idx)
            plain = self._key.decrypt(n.data, aad)
            if o is not None and o.type in SECRET_TYPES and self._key.opens(o.data, aad) \
                    and hmac.compare_digest(self._key.decrypt(o.data, aad), plain):
                continue
            phash = hash_password(plain)
            conn.execute("UPDATE admins SET password_hash = ? WHERE handle_key = ? AND idx = ?",
                         (phash, key, idx))
            conn.execute(_AUDIT, (now, actor, "admin.set", handle, before,
                                  record_digest(handle, idx, scope, phash)))

    def _put_admin(self, conn: sqlite3.Connection, now: float, actor: str, admin: AdminIdentity,
                   h: Handle, scope: str | None) -> None:
        old = conn.execute("SELECT handle, scope, password_hash FROM admins WHERE handle_key = ? AND idx = ?",
                           (h.key, admin.index)).fetchone()
        text = self._row(conn, h.key)[0]
        conn.execute("INSERT INTO admins (handle_key, idx, handle, scope_key, scope, password_hash) "
                     "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (handle_key, idx) DO UPDATE SET "
                     "scope_key = excluded.scope_key, scope = excluded.scope, "
                     "password_hash = excluded.password_hash",
                     (h.key, admin.index, text, handle_key(scope) if scope else None, scope,
                      admin.password_hash))
        conn.execute(_AUDIT, (now, actor, "admin.set", text,
                              record_digest(old[0], admin.index, old[1], old[2]) if old else "",
                              record_digest(text, admin.index, scope, admin.password_hash)))

    # -- node -------------------------------------------------------------------------------
    async def initialise(self, secondary_prefix: str, node_admin: AdminIdentity,
                         admin_values: Sequence[HandleValue], *, actor: str) -> None:
        prefix = parse_prefix_text(secondary_prefix)
        values = clean_values(admin_values)
        h = check_admin(node_admin, values)
        if h.key != handle_key(f"0.NA/{prefix}"):
            raise InvalidHandleError(f"the node admin must be 0.NA/{prefix}, not {h.text}")
        if node_admin.scope is not None:
            raise InvalidValue("the node admin has no prefix scope")
        await self._write(self._initialise_tx, prefix, node_admin, h, values, actor)

    def _initialise_tx(self, conn, now, prefix, admin, h, values, actor) -> None:
        if conn.execute("SELECT 1 FROM meta WHERE name = 'secondary_prefix'").fetchone():
            raise HandleExists("the node is already initialised")
        if self._row(conn, h.key) is not None:
            raise HandleExists(f"{h.text} already exists")
        conn.execute("INSERT INTO meta (name, value) VALUES ('secondary_prefix', ?)", (prefix,))
        conn.execute(_AUDIT, (now, actor, "node.initialise", prefix, "", record_digest(prefix)))
        self._store(conn, now, actor, h, None, values, "handle.create")
        self._put_admin(conn, now, actor, admin, h, None)

    async def secondary_prefix(self) -> str:
        rows = self._read("SELECT value FROM meta WHERE name = 'secondary_prefix'")
        if not rows:
            raise NotInitialised(f"no node is initialised in {self.path} (run `idnode init`)")
        return rows[0][0]

    # -- enterprise prefixes -------------------------------------------------------------
    async def create_prefix(self, info: PrefixInfo, admin: AdminIdentity,
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
        values = clean_values(admin_values)
        h = check_admin(admin, values)
        if h.prefix_key != key:
            raise InvalidHandleError(f"admin {h.text} is not under prefix {prefix}")
        if not isinstance(admin.scope, str) or handle_key(admin.scope) != key:
            raise InvalidValue(f"admin scope must be {prefix}")
        info = replace(info, prefix=prefix)
        await self._write(self._create_prefix_tx, info, key, admin, h, values, actor)

    def _create_prefix_tx(self, conn, now, info, key, admin, h, values, actor) -> None:
        if conn.execute("SELECT 1 FROM prefixes WHERE key = ?", (key,)).fetchone():
            raise PrefixExists(f"prefix {info.prefix} is already allocated")
        created = info.created or int(now)
        row = (info.prefix, info.owner, info.credit_code, info.contact, info.state, created)
        conn.execute("INSERT INTO prefixes (key, prefix, owner, credit_code, contact, state, created) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (key, *row))
        conn.execute(_AUDIT, (now, actor, "prefix.create", info.prefix, "", record_digest(*row)))
        if self._row(conn, h.key) is not None:
            raise HandleExists(f"{h.text} already exists")
        self._store(conn, now, actor, h, None, values, "handle.create")
        self._put_admin(conn, now, actor, admin, h, info.prefix)

    _PREFIX_COLS = "prefix, owner, credit_code, contact, state, created"

    async def get_prefix(self, prefix: str) -> PrefixInfo | None:
        rows = self._read(f"SELECT {self._PREFIX_COLS} FROM prefixes WHERE key = ?",
                          (handle_key(parse_prefix_text(prefix)),))
        return PrefixInfo(*rows[0]) if rows else None

    async def list_prefixes(self) -> list[PrefixInfo]:
        return [PrefixInfo(*r) for r in self._read(f"SELECT {self._PREFIX_COLS} FROM prefixes ORDER BY key")]

    async def set_prefix_state(self, prefix: str, state: str, *, actor: str) -> PrefixInfo:
        key = handle_key(parse_prefix_text(prefix))
        return await self._write(self._set_state_tx, key, check_state(state), actor)

    def _set_state_tx(self, conn, now, key, state, actor) -> PrefixInfo:
        row = conn.execute(f"SELECT {self._PREFIX_COLS} FROM prefixes WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise PrefixNotFound(f"prefix {key} is not allocated on this node")
        new = (*row[:4], state, row[5])
        conn.execute("UPDATE prefixes SET state = ? WHERE key = ?", (state, key))
        conn.execute(_AUDIT, (now, actor, "prefix.state", row[0], record_digest(*row), record_digest(*new)))
        return PrefixInfo(*new)

    # -- identifiers ------------------------------------------------------------------------
    async def get_handle(self, handle: str) -> HandleRecord | None:
        rows = self._read("SELECT handle, vals FROM handles WHERE key = ?", (parse(handle).key,))
        return HandleRecord(rows[0][0], decode_values(rows[0][1])) if rows else None

    async def put_handle(self, handle: str, values: Sequence[HandleValue], *,
                         mode: PutMode, actor: str) -> HandleRecord:
        if mode not in ("create", "replace", "merge", "add"):
            raise InvalidValue(f"unknown put mode {mode!r}")
        h = parse(handle)
        clean = clean_values(values)
        return await self._write(self._put_tx, h, clean, mode, actor)

    def _put_tx(self, conn, now, h: Handle, values: list[HandleValue], mode: str, actor: str) -> HandleRecord:
        self._check_prefix(conn, h)
        old = self._row(conn, h.key)
        if old is None:
            if mode in ("merge", "add"):
                raise HandleNotFound(f"{h.text} does not exist")
            return self._store(conn, now, actor, h, None, values, "handle.create")
        if mode == "create":
            raise HandleExists(f"{old[0]} already exists")
        if mode == "replace":
            return self._store(conn, now, actor, h, old, values, "handle.replace")
        current = {v.index: v for v in decode_values(old[1])}
        if mode == "add":
            taken = sorted(v.index for v in values if v.index in current)
            if taken:
                raise ValueExists(f"{old[0]} already has values at index {', '.join(map(str, taken))}")
        current.update((v.index, v) for v in values)
        merged = [current[i] for i in sorted(current)]
        return self._store(conn, now, actor, h, old, merged, f"handle.{mode}")

    async def remove_values(self, handle: str, indexes: Iterable[int], *, actor: str) -> HandleRecord:
        h = parse(handle)
        try:
            wanted = frozenset(indexes)
        except TypeError:
            raise InvalidValue("indexes must be integers") from None
        if not all(type(i) is int for i in wanted):
            raise InvalidValue("indexes must be integers")
        return await self._write(self._remove_tx, h, wanted, actor)

    def _remove_tx(self, conn, now, h: Handle, wanted: frozenset[int], actor: str) -> HandleRecord:
        self._check_prefix(conn, h)
        old = self._row(conn, h.key)
        if old is None:
            raise HandleNotFound(f"{h.text} does not exist")
        current = decode_values(old[1])
        kept = [v for v in current if v.index not in wanted]
        if len(kept) == len(current):
            raise ValuesNotFound(f"{old[0]} has none of the values {sorted(wanted)}")
        return self._store(conn, now, actor, h, old, kept, "handle.remove_values")

    async def delete_handle(self, handle: str, *, actor: str) -> None:
        await self._write(self._delete_tx, parse(handle), actor)

    def _delete_tx(self, conn, now, h: Handle, actor: str) -> None:
        self._check_prefix(conn, h)
        old = self._row(conn, h.key)
        if old is None:
            raise HandleNotFound(f"{h.text} does not exist")
        for idx, scope, phash in conn.execute(
                "SELECT idx, scope, password_hash FROM admins WHERE handle_key = ?", (h.key,)).fetchall():
            conn.execute(_AUDIT, (now, actor, "admin.revoke", old[0],
                                  record_digest(old[0], idx, scope, phash), ""))
        conn.execute("DELETE FROM handles WHERE key = ?", (h.key,))   # admins cascade
        conn.execute(_AUDIT, (now, actor, "handle.delete", old[0], digest(old[1]), ""))
        self._count(conn, -1)

    async def register_batch(self, items: Sequence[tuple[str, Sequence[HandleValue]]], *,
                             overwrite: bool, actor: str) -> list[ItemResult]:
        results, touched = await self._run(self._batch, list(items), bool(overwrite), actor)
        if touched:
            self._notify_written(touched)
        return results

    def _batch(self, items: list, overwrite: bool, actor: str) -> tuple[list[ItemResult], list[str]]:
        """Validate every item (outside the transaction), then apply the good ones in one."""
        results: list[ItemResult | None] = [None] * len(items)
        good: list[tuple[int, str, str, str, str, list[HandleValue]]] = []
        for i, item in enumerate(items):
            raw = item[0] if isinstance(item, (tuple, list)) and item else item
            label = raw if isinstance(raw, str) else repr(raw)
            try:
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise InvalidValue("each item must be (handle, values)")
                h = parse(raw)
                key = h.key
                good.append((i, label, h.text, key, key[:len(h.prefix)], clean_values(item[1])))
            except RegistryError as exc:
                results[i] = ItemResult(label, exc.code, str(exc))
        touched: list[str] = []
        if good:
            _, touched = self._transaction(self._batch_tx, (good, results, overwrite, actor))
        return results, touched  # type: ignore[return-value]

    def _batch_tx(self, conn, now, good: list, results: list, overwrite: bool, actor: str) -> None:
        """Apply the items in order: a later item sees an earlier one of the same batch."""
        states = dict(self._in_rows(conn, "SELECT key, state FROM prefixes WHERE key IN ({})",
                                    {g[4] for g in good} - {NODE_PREFIX_KEY}))
        states[NODE_PREFIX_KEY] = "enabled"
        existing = {k: (t, b) for k, t, b in
                    self._in_rows(conn, "SELECT key, handle, vals FROM handles WHERE key IN ({})",
                                  {g[3] for g in good})}
        current = dict(existing)
        upserts, audits, added, stamp = [], [], 0, int(now)
        for i, label, text, key, prefix_key, values in good:
            state = states.get(prefix_key)
            if state != "enabled":
                prefix = text[:len(prefix_key)]
                exc = (PrefixNotFound(f"prefix {prefix} is not allocated on this node") if state is None
                       else PrefixDisabled(f"prefix {prefix} is disabled"))
                results[i] = ItemResult(label, exc.code, str(exc))
                continue
            old = current.get(key)
            if old is not None and not overwrite:
                results[i] = ItemResult(label, RC.HANDLE_ALREADY_EXISTS, f"{old[0]} already exists")
                continue
            if any(v.type in SECRET_TYPES for v in values):
                values = self._seal(key, values)
            blob = encode_values(values, stamp)
            if old is None:
                added += 1
                audits.append((now, actor, "handle.create", text, "", digest(blob)))
            else:
                text = old[0]
                audits.append((now, actor, "handle.replace", text, digest(old[1]), digest(blob)))
            upserts.append((key, text, prefix_key, blob, now))
            current[key] = (text, blob)
            results[i] = ItemResult(label, RC.SUCCESS)
        conn.executemany(_UPSERT, upserts)
        conn.executemany(_AUDIT, audits)
        self._count(conn, added)
        if overwrite and existing:
            for (key,) in self._in_rows(conn, "SELECT DISTINCT handle_key FROM admins WHERE handle_key IN ({})",
                                        existing.keys()):
                self._sync_admins(conn, now, actor, key, existing[key][1], current[key][1])

    @staticmethod
    def _in_rows(conn: sqlite3.Connection, sql: str, keys: Iterable[str]) -> list[tuple]:
        keys = list(keys)
        rows: list[tuple] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            rows += conn.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    async def list_handles(self, prefix: str, *, page: int = 0, page_size: int = 1000) -> list[str]:
        key = handle_key(parse_prefix_text(prefix))
        if type(page) is not int or type(page_size) is not int or page < 0 or page_size < 0:
            raise InvalidValue("page and page_size must be non-negative integers")
        # Keys under a prefix are exactly the range [prefix "/", prefix "0"): '0' follows '/'.
        sql = "SELECT handle FROM handles WHERE key >= ? AND key < ? ORDER BY key"
        params: tuple = (key + "/", key + "0")
        if page_size:
            sql += " LIMIT ? OFFSET ?"
            params += (page_size, page * page_size)
        return [r[0] for r in self._read(sql, params)]

    async def count_handles(self) -> int:
        return self._read("SELECT value FROM meta WHERE name = 'handle_count'")[0][0]

    async def count_prefixes(self) -> int:
        return self._read("SELECT count(*) FROM prefixes")[0][0]

    # -- admin identities ------------------------------------------------------------------
    async def get_admin(self, handle: str, index: int) -> AdminIdentity | None:
        if not is_u32(index):
            raise InvalidValue(f"admin index {index!r} out of range")
        rows = self._read("SELECT handle, idx, scope, password_hash FROM admins WHERE handle_key = ? AND idx = ?",
                          (parse(handle).key, index))
        return AdminIdentity(*rows[0]) if rows else None

    async def admin_secret(self, handle: str, index: int) -> bytes | None:
        if not is_u32(index):
            raise InvalidValue(f"admin index {index!r} out of range")
        record = await self.get_handle(handle)
        if record is None:
            return None
        for v in record.values:
            if v.index == index and v.type in SECRET_TYPES:
                return self._key.decrypt(v.data, secret_aad(handle_key(record.handle), index))
        return None

    async def set_admin_password(self, admin: AdminIdentity, secret_value: HandleValue, *, actor: str) -> None:
        h = check_admin(admin)
        (value,) = clean_values([secret_value])
        if value.type not in SECRET_TYPES or value.index != admin.index:
            raise InvalidValue(f"the secret must be an HS_SECKEY value at index {admin.index}")
        if (admin.scope is None) != (h.prefix_key == NODE_PREFIX_KEY):
            raise InvalidValue("only 0.NA admins have no scope, and they have none")
        if admin.scope is not None and (not isinstance(admin.scope, str)
                                        or handle_key(admin.scope) != h.prefix_key):
            raise InvalidValue(f"admin {h.text} must have scope {h.prefix}")
        await self._write(self._set_admin_tx, admin, h, value, actor)

    def _set_admin_tx(self, conn, now, admin: AdminIdentity, h: Handle, value: HandleValue, actor: str) -> None:
        scope = None        # a disabled prefix may still rotate its secret (e.g. after a leak)
        if admin.scope is not None:
            row = conn.execute("SELECT prefix FROM prefixes WHERE key = ?", (h.prefix_key,)).fetchone()
            if row is None:
                raise PrefixNotFound(f"prefix {h.prefix} is not allocated on this node")
            scope = row[0]
        old = self._row(conn, h.key)
        if old is None:
            self._store(conn, now, actor, h, None, [value], "handle.create")
        else:
            current = {v.index: v for v in decode_values(old[1])}
            current[value.index] = value
            self._store(conn, now, actor, h, old, [current[i] for i in sorted(current)], "handle.merge",
                        sync_admins=False)
        self._put_admin(conn, now, actor, admin, h, scope)

    # -- audit and change feed -----------------------------------------------------------
    async def audit(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        if type(since_seq) is not int or type(limit) is not int or limit < 0:
            raise InvalidValue("since_seq and limit must be integers, limit >= 0")
        rows = self._read("SELECT seq, at, actor, operation, handle, before_digest, after_digest "
                          "FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (since_seq, limit or -1))
        return [AuditEntry(*r) for r in rows]

    async def last_seq(self) -> int:
        rows = self._read("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")
        return rows[0][0] if rows else 0
