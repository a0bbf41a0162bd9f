"""What only the embedded backend has: its file, schema, pragmas and locks."""

from __future__ import annotations

import sqlite3

import pytest

from protocol.codes import RC
from registry.errors import RegistryError, StoreUnavailable
from registry.rules import Registry
from registry.sqlite import SCHEMA_VERSION, SQLiteBackend

from .conftest import Place, url


def SQLiteStore(path, key, **kw):      # noqa: N802 - the embedded store, as open_store builds it
    return Registry(SQLiteBackend(path, **kw), key)


@pytest.fixture
def place(db_path):     # these tests are the embedded backend's alone
    return Place("sqlite", db_path)


async def test_schema_and_pragmas(store, db_path):
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 8192            # a new file's rows fit their pages
    for conn in (store.backend._reader, store.backend._writer_conn):
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


async def test_newer_schema_is_refused(store, db_path, node_key):
    await store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    again = SQLiteStore(db_path, node_key)
    with pytest.raises(RegistryError, match="schema version"):
        await again.open()


async def test_locked_database_is_store_unavailable(store, db_path, node_key):
    impatient = SQLiteStore(db_path, node_key, busy_timeout=0.05)
    await impatient.open()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            await impatient.register_batch([("88.118.8/l1", [url(1, "a")])], overwrite=False, actor="t")
        holder.execute("ROLLBACK")
        assert await impatient.get_handle("88.118.8/l1") is None
        results = await impatient.register_batch([("88.118.8/l1", [url(1, "a")])], overwrite=False, actor="t")
        assert results[0].code == RC.SUCCESS
    finally:
        holder.close()
        await impatient.close()


async def test_not_a_database_is_a_registry_error(tmp_path, node_key):
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not an SQLite file at all, just some text " * 100)
    store = SQLiteStore(path, node_key)
    with pytest.raises(RegistryError, match="not a database"):
        await store.open()


