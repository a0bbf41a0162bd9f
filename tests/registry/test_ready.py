"""Every write keeps an identifier's public values ready for a reply beside
its stored form (registry.codec.ready_values), and a store written before it
did is migrated and still read."""

from __future__ import annotations

import sqlite3

from protocol.handle.valuecodec import write_values
from protocol.values import HandleValue, Perm, public_values
from protocol.wire import Writer
from registry.rules import Registry
from registry.sqlite import SQLiteBackend
from registry.sqlite_schema import MIGRATIONS

from .conftest import seckey, url

ADMIN_ONLY = int(Perm.ADMIN_READ | Perm.ADMIN_WRITE)


def expected(values) -> bytes:
    """What a reply carries for these (stored, stamped) values: the public ones, encoded."""
    w = Writer()
    write_values(w, public_values(values))
    return w.getvalue()


MIXED = [url(1, "https://acme.example/p/1"), HandleValue(2, "EMAIL", b"ops@acme.example", permissions=ADMIN_ONLY),
         seckey("a secret", 3), HandleValue(4, "DESC", b"\xe4\xba\xa7\xe5\x93\x81", ttl=60)]


async def test_each_write_path_keeps_the_public_values_ready(store, place):
    await store.put_handle("88.118.8/one", MIXED, mode="create", actor="t")
    await store.register_batch([("88.118.8/two", MIXED), ("88.118.8/three", [url(1, "https://x/")])],
                               overwrite=False, actor="t")
    await store.put_handle("88.118.8/one", MIXED[:2], mode="replace", actor="t")        # replaced: ready follows
    await store.register_batch([("88.118.8/two", [url(1, "https://y/")])], overwrite=True, actor="t")
    for handle in ("88.118.8/one", "88.118.8/two", "88.118.8/three"):
        record = await store.get_handle(handle)
        assert record.ready == place.raw_ready(handle.lower()) == expected(record.values), handle
        assert all(v.timestamp for v in record.values)                 # stamped as the stored form is
    one = await store.get_handle("88.118.8/one")
    assert one.ready == expected([one.values[0]])                     # the admin-only value is left out


async def test_no_public_values_is_an_empty_list(store):
    await store.put_handle("88.118.8/hidden", [MIXED[1], MIXED[2]], mode="create", actor="t")
    assert (await store.get_handle("88.118.8/hidden")).ready == bytes(4)


async def test_a_store_of_the_first_schema_is_migrated_and_its_rows_read(tmp_path, node_key):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:                  # a file as the first schema wrote it
        conn.executescript(MIGRATIONS[1])
        conn.execute("PRAGMA user_version = 1")
    old = Registry(SQLiteBackend(path), node_key)
    await old.open()
    try:
        await old.put_handle("0.NA/legacy", [url(1, "https://legacy/")], mode="create", actor="t")
    finally:
        await old.close()
    with sqlite3.connect(path) as conn:                  # as if written before the column existed
        conn.execute("UPDATE handles SET ready = NULL")
    again = Registry(SQLiteBackend(path), node_key)
    await again.open()
    try:
        record = await again.get_handle("0.NA/legacy")
        assert record.ready is None and record.values[0].data == b"https://legacy/"
        await again.put_handle("0.NA/legacy", [url(1, "https://new/")], mode="replace", actor="t")
        assert (await again.get_handle("0.NA/legacy")).ready == expected((await again.get_handle("0.NA/legacy")).values)
    finally:
        await again.close()
