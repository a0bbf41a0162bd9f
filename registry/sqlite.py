"""The embedded backend: one SQLite file in WAL mode (storage only; the rules
are in :mod:`registry.rules`).

One row per identifier: the ASCII-lowercased key (the b-tree key of a
WITHOUT ROWID table), the identifier as registered, its prefix key,
every value in one blob, and its public values ready for a reply, so a
resolution is one primary-key lookup (joined with its prefix's state) and a
bulk import is one ``executemany``.

Reads run inline on the caller's thread over one read-only connection; writes
run on one writer thread with its own connection, so the event loop never
waits on fsync. Every write is one ``BEGIN IMMEDIATE`` transaction holding
the change and its audit rows. ``synchronous=FULL``: an acknowledged write
survives a crash or power loss.

The change feed is the audit table: :meth:`SQLiteBackend.feed` looks for new
rows every ``poll_interval`` seconds (SQLite has no cross-process
notification), so every process on the file sees every write.
"""

from __future__ import annotations

import asyncio
import threading
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Collection, Iterable, Sequence

from protocol.identifier import handle_key as key_of

from .backend import Backend, ReadRow, Row, Tx
from .errors import StoreUnavailable
from .model import AdminIdentity, AuditEntry, PrefixInfo
from .sqlite_schema import SCHEMA_VERSION, db_error, migrate

__all__ = ["SQLiteBackend", "SCHEMA_VERSION", "migrate"]

_CHUNK = 500             # keys per "IN (...)" query
PAGE_SIZE = 8192         # bytes; for files created from now on
FEED_BATCH = 10_000      # audit rows read per look; a reader further behind starts over

_UPSERT = ("INSERT INTO handles (key, handle, prefix_key, vals, ready, updated) VALUES (?, ?, ?, ?, ?, ?) "
           "ON CONFLICT (key) DO UPDATE SET vals = excluded.vals, ready = excluded.ready, updated = excluded.updated")
_AUDIT = ("INSERT INTO audit (at, actor, operation, handle, before_digest, after_digest) "
          "VALUES (?, ?, ?, ?, ?, ?)")
_READ = ("SELECT h.handle, h.vals, p.state, h.ready FROM handles h LEFT JOIN prefixes p ON p.key = h.prefix_key "
         "WHERE h.key = ?")
_PREFIX_COLS = "prefix, owner, credit_code, contact, state, created"
_HOME = ("SELECT p.state, h.handle, h.vals, h.ready FROM (SELECT 1) LEFT JOIN prefixes p ON p.key = ? "
         "LEFT JOIN handles h ON h.key = ?")


def _in_rows(conn: sqlite3.Connection, sql: str, keys: Iterable[str]) -> list[tuple]:
    keys = list(keys)
    rows: list[tuple] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        rows += conn.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
    return rows


class _SQLiteTx(Tx):
    __slots__ = ("_conn", "now")

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self._conn = conn
        self.now = now

    def rows(self, keys: Collection[str]) -> dict[str, Row]:
        return {k: Row(k, h, p, b) for k, h, p, b in
                _in_rows(self._conn, "SELECT key, handle, prefix_key, vals FROM handles WHERE key IN ({})", keys)}

    def put_rows(self, rows: Sequence[Row]) -> None:
        now = self.now
        self._conn.executemany(_UPSERT, [(r.key, r.handle, r.prefix_key, r.blob, r.ready, now) for r in rows])

    def delete_row(self, key: str) -> None:
        self._conn.execute("DELETE FROM handles WHERE key = ?", (key,))      # admins cascade

    def prefix(self, key: str) -> PrefixInfo | None:
        row = self._conn.execute(f"SELECT {_PREFIX_COLS} FROM prefixes WHERE key = ?", (key,)).fetchone()
        return PrefixInfo(*row) if row else None

    def prefix_states(self, keys: Collection[str]) -> dict[str, str]:
        return dict(_in_rows(self._conn, "SELECT key, state FROM prefixes WHERE key IN ({})", keys))

    def put_prefix(self, key: str, info: PrefixInfo) -> None:
        self._conn.execute(
            f"INSERT INTO prefixes (key, {_PREFIX_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE "
            "SET owner = excluded.owner, credit_code = excluded.credit_code, contact = excluded.contact, "
            "state = excluded.state",
            (key, info.prefix, info.owner, info.credit_code, info.contact, info.state, info.created))

    def admins(self, handle_keys: Collection[str]) -> dict[str, list[AdminIdentity]]:
        out: dict[str, list[AdminIdentity]] = {}
        for key, handle, idx, scope, phash in _in_rows(
                self._conn, "SELECT handle_key, handle, idx, scope, password_hash FROM admins "
                            "WHERE handle_key IN ({}) ORDER BY handle_key, idx", handle_keys):
            out.setdefault(key, []).append(AdminIdentity(handle, idx, scope, phash))
        return out

    def put_admin(self, handle_key: str, admin: AdminIdentity) -> None:
        scope_key = key_of(admin.scope) if admin.scope else None
        self._conn.execute(
            "INSERT INTO admins (handle_key, idx, handle, scope_key, scope, password_hash) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (handle_key, idx) DO UPDATE SET handle = excluded.handle, scope_key = excluded.scope_key, "
            "scope = excluded.scope, password_hash = excluded.password_hash",
            (handle_key, admin.index, admin.handle, scope_key, admin.scope, admin.password_hash))

    def delete_admin(self, handle_key: str, index: int) -> None:
        self._conn.execute("DELETE FROM admins WHERE handle_key = ? AND idx = ?", (handle_key, index))

    def meta(self, name: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: Any) -> None:
        self._conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))

    def add_count(self, name: str, delta: int) -> None:
        if delta:
            self._conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                               "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (name, delta))

    def log(self, entries: Sequence[AuditEntry]) -> None:
        self._conn.executemany(_AUDIT, [(e.at, e.actor, e.operation, e.handle, e.before_digest, e.after_digest)
                                        for e in entries])


class SQLiteBackend(Backend):
    """The embedded backend (see the module docstring)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._reader: sqlite3.Connection | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._read_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"sqlite://{self.path}"

    # -- lifecycle --------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            # A larger page cache and memory-mapped reads keep cold lookups off
            # read() system calls once the file is in the OS page cache. Pages of
            # 8 KiB (set before anything else, it holds for a new file only) keep
            # a row of up to about 2 KB, stored values and reply-ready values, in
            # its b-tree page: on 4 KiB pages a 4-8 value record spills onto an
            # overflow page of its own, and every read and write pays for it.
            for pragma in (f"page_size = {PAGE_SIZE}", f"busy_timeout = {int(self._busy_timeout * 1000)}",
                           "journal_mode = WAL",
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

    # -- writes ---------------------------------------------------------------------
    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._writer is None:
            raise StoreUnavailable("the store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)
        except sqlite3.Error as exc:
            raise db_error(exc) from None

    async def transact(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._run(self._transaction, fn, args)

    def _transaction(self, fn: Callable[..., Any], args: tuple) -> Any:
        conn = self._writer_conn
        if conn is None:
            raise StoreUnavailable("the store is not open")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(_SQLiteTx(conn, time.time()), *args)
            conn.execute("COMMIT")
            return result
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    # -- reads ----------------------------------------------------------------------
    def _read(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._read_lock:
            if self._reader is None:
                raise StoreUnavailable("the store is not open")
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise db_error(exc) from None

    reads_inline = True

    def read_now(self, key: str) -> ReadRow | None:
        rows = self._read(_READ, (key,))
        return ReadRow(*rows[0]) if rows else None

    async def read(self, key: str) -> ReadRow | None:
        return self.read_now(key)

    async def read_many(self, keys: Collection[str]) -> dict[str, ReadRow]:
        keys = list(keys)
        out: dict[str, ReadRow] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            for k, h, b, s, r in self._read(
                    "SELECT h.key, h.handle, h.vals, p.state, h.ready FROM handles h LEFT JOIN prefixes p "
                    f"ON p.key = h.prefix_key WHERE h.key IN ({','.join('?' * len(chunk))})", chunk):
                out[k] = ReadRow(h, b, s, r)
        return out

    def read_home_now(self, prefix_key: str) -> tuple[str | None, ReadRow | None]:
        (state, handle, vals, ready), = self._read(_HOME, (prefix_key, "0.na/" + prefix_key))
        return state, (ReadRow(handle, vals, None, ready) if handle is not None else None)

    async def read_home(self, prefix_key: str) -> tuple[str | None, ReadRow | None]:
        return self.read_home_now(prefix_key)

    async def read_prefix(self, key: str) -> PrefixInfo | None:
        rows = self._read(f"SELECT {_PREFIX_COLS} FROM prefixes WHERE key = ?", (key,))
        return PrefixInfo(*rows[0]) if rows else None

    async def list_prefixes(self) -> list[PrefixInfo]:
        return [PrefixInfo(*r) for r in self._read(f"SELECT {_PREFIX_COLS} FROM prefixes ORDER BY key")]

    async def read_admin(self, handle_key: str, index: int) -> AdminIdentity | None:
        rows = self._read("SELECT handle, idx, scope, password_hash FROM admins WHERE handle_key = ? AND idx = ?",
                          (handle_key, index))
        return AdminIdentity(*rows[0]) if rows else None

    async def list_keys(self, prefix_key: str, after: str | None, limit: int) -> list[tuple[str, str]]:
        # Keys under a prefix are exactly the range [prefix "/", prefix "0"): '0' follows '/'.
        low = prefix_key + "/"
        if after is None:
            sql = "SELECT key, handle FROM handles WHERE key >= ? AND key < ? ORDER BY key LIMIT ?"
        else:
            low, sql = after, "SELECT key, handle FROM handles WHERE key > ? AND key < ? ORDER BY key LIMIT ?"
        return self._read(sql, (low, prefix_key + "0", limit))

    async def read_meta(self, name: str) -> Any:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    async def count_prefixes(self) -> int:
        return self._read("SELECT count(*) FROM prefixes")[0][0]

    # -- audit and feed ------------------------------------------------------------------
    async def audit(self, since_seq: int, limit: int) -> list[AuditEntry]:
        rows = self._read("SELECT seq, at, actor, operation, handle, before_digest, after_digest "
                          "FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (since_seq, limit or -1))
        return [AuditEntry(*r) for r in rows]

    async def last_seq(self) -> int:
        rows = self._read("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")
        return rows[0][0] if rows else 0

    async def feed(self, poll_interval: float) -> AsyncIterator[list[AuditEntry] | None]:
        seq = await self.last_seq()
        while True:
            await asyncio.sleep(poll_interval)
            entries = await self.audit(seq, FEED_BATCH)
            if len(entries) >= FEED_BATCH:         # far behind: start over from here
                seq = await self.last_seq()
                yield None
            elif entries:
                seq = entries[-1].seq
                yield entries
