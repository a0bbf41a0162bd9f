"""The Store (registry.rules.Registry): every method, against each backend
(a real SQLite file, a single Redis, a Redis Cluster: tests/registry/conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from protocol.codes import RC
from protocol.values import HandleValue, Reference
from registry.codec import encode_values
from registry.errors import (HandleExists, HandleNotFound, InvalidHandleError, InvalidValue, NodeKeyError,
                             NotInitialised, PrefixDisabled, PrefixExists, PrefixNotFound, RecordChanged,
                             StoreUnavailable)
from registry.model import ABSENT, AdminIdentity, Changes, PrefixInfo
from registry.rules import Registry
from registry.secrets import NodeKey, verify_password
from registry.validation import SizeLimits, value_size


from .conftest import ENT_SECRET, NODE_SECRET, add_prefix, seckey, url


async def ops_since(store, seq):
    return [(e.operation, e.handle) for e in await store.audit(since_seq=seq)]


# -- node and prefixes -------------------------------------------------------------------
async def test_initialise_records_prefix_and_node_admin(store):
    assert await store.secondary_prefix() == "88.118"
    admin = await store.get_admin("0.na/88.118", 300)
    assert admin is not None and admin.scope is None and admin.handle == "0.NA/88.118"
    assert verify_password(NODE_SECRET, admin.password_hash)
    assert await store.admin_secret("0.NA/88.118", 300) == NODE_SECRET.encode()


async def test_initialise_twice_fails(store, hashes):
    admin = AdminIdentity("0.NA/88.119", 300, None, hashes[NODE_SECRET])
    with pytest.raises(HandleExists):
        await store.initialise("88.119", admin, [seckey(NODE_SECRET)], actor="test")
    assert await store.secondary_prefix() == "88.118"


async def test_not_initialised(bare):
    with pytest.raises(NotInitialised):
        await bare.secondary_prefix()


async def test_initialise_rolls_back_when_admin_handle_exists(bare, hashes):
    await bare.put_handle("0.NA/88.118", [url(1, "x")], mode="create", actor="test")
    seq = await bare.last_seq()
    admin = AdminIdentity("0.NA/88.118", 300, None, hashes[NODE_SECRET])
    with pytest.raises(HandleExists):
        await bare.initialise("88.118", admin, [seckey(NODE_SECRET)], actor="test")
    with pytest.raises(NotInitialised):       # the prefix row written first was rolled back
        await bare.secondary_prefix()
    assert await bare.last_seq() == seq


@pytest.mark.parametrize("handle, scope, values, error", [
    ("0.NA/88.119", None, "secret", InvalidHandleError),       # not 0.NA/<prefix>
    ("0.NA/88.118", "88.118", "secret", InvalidValue),          # node admin has no scope
    ("0.NA/88.118", None, "url", InvalidValue),                 # no HS_SECKEY at the admin index
])
async def test_initialise_checks_the_admin(bare, hashes, handle, scope, values, error):
    vals = [seckey(NODE_SECRET)] if values == "secret" else [url(300, "x")]
    with pytest.raises(error):
        await bare.initialise("88.118", AdminIdentity(handle, 300, scope, hashes[NODE_SECRET]), vals,
                              actor="test")
    assert await bare.last_seq() == 0


async def test_create_prefix(store, hashes):
    info = await store.get_prefix("88.118.8")
    assert info.owner == "owner of 88.118.8" and info.state == "enabled" and info.created > 0
    assert (await store.get_prefix("88.118.8")) == (await store.list_prefixes())[0]
    admin = await store.get_admin("88.118.8/admin", 300)
    assert admin.scope == "88.118.8" and admin.identity == "300:88.118.8/ADMIN"
    assert await store.admin_secret("88.118.8/ADMIN", 300) == ENT_SECRET.encode()
    await add_prefix(store, "88.118.10", hashes)
    assert [p.prefix for p in await store.list_prefixes()] == ["88.118.10", "88.118.8"]
    assert await store.count_prefixes() == 2
    assert await store.get_prefix("88.118.99") is None


async def test_create_prefix_refusals_write_nothing(store, hashes):
    seq, n = await store.last_seq(), await store.count_prefixes()
    with pytest.raises(PrefixExists):
        await add_prefix(store, "88.118.8", hashes)
    bad_admin = AdminIdentity("88.118.7/ADMIN", 300, "88.118.9", hashes[ENT_SECRET])
    with pytest.raises(InvalidHandleError):           # admin not under its prefix
        await store.create_prefix(PrefixInfo("88.118.9", "x"), bad_admin, [seckey(ENT_SECRET)], actor="t")
    with pytest.raises(InvalidHandleError):           # 0.NA is the node's own
        await add_prefix(store, "0.NA", hashes)
    with pytest.raises(InvalidValue):
        await store.create_prefix(PrefixInfo("88.118.9", "x", state="paused"),
                                  AdminIdentity("88.118.9/ADMIN", 300, "88.118.9", hashes[ENT_SECRET]),
                                  [seckey(ENT_SECRET)], actor="t")
    with pytest.raises(InvalidValue):                 # not a scrypt hash
        await store.create_prefix(PrefixInfo("88.118.9", "x"),
                                  AdminIdentity("88.118.9/ADMIN", 300, "88.118.9", ENT_SECRET),
                                  [seckey(ENT_SECRET)], actor="t")
    assert (await store.last_seq(), await store.count_prefixes()) == (seq, n)
    assert await store.get_handle("88.118.9/ADMIN") is None


async def test_prefix_state(store):
    await store.put_handle("88.118.8/a", [url(1, "x")], mode="create", actor="t")
    info = await store.set_prefix_state("88.118.8", "disabled", actor="t")
    assert info.state == "disabled" and (await store.get_prefix("88.118.8")).state == "disabled"
    with pytest.raises(PrefixDisabled):
        await store.put_handle("88.118.8/b", [url(1, "x")], mode="create", actor="t")
    with pytest.raises(PrefixDisabled):
        await store.delete_handle("88.118.8/a", actor="t")
    assert (await store.get_handle("88.118.8/a")) is not None   # reads still answer
    await store.set_prefix_state("88.118.8", "enabled", actor="t")
    await store.put_handle("88.118.8/b", [url(1, "x")], mode="create", actor="t")
    with pytest.raises(PrefixNotFound):
        await store.set_prefix_state("88.118.99", "disabled", actor="t")
    with pytest.raises(InvalidValue):
        await store.set_prefix_state("88.118.8", "gone", actor="t")


# -- identifiers: modes ------------------------------------------------------------------------
async def test_create_and_get(store):
    values = [url(2, "https://b"), HandleValue(1, "EMAIL", b"a@b.c", ttl=60, ttl_absolute=True, timestamp=7,
                                                 permissions=0xF, references=(Reference("88.118.8/x", 3),))]
    rec = await store.put_handle("88.118.8/item", values, mode="create", actor="t")
    assert [v.index for v in rec.values] == [1, 2]
    assert rec.values[0] == values[1]                                   # every field kept
    assert rec.values[1].timestamp > 0                                  # stamped when 0
    assert await store.get_handle("88.118.8/item") == rec
    with pytest.raises(HandleExists):
        await store.put_handle("88.118.8/ITEM", [url(1, "y")], mode="create", actor="t")
    assert await store.get_handle("88.118.8/item") == rec


async def test_values_and_records_are_bounded_on_every_write(store):
    """registry.max_value_bytes and max_record_bytes (64 KiB, 1 MiB by
    default): at the bound a write is taken, past it refused whole."""
    store.limits = SizeLimits(max_value_bytes=100, max_record_bytes=250)
    at_bound = HandleValue(1, "DESC", b"x" * 96)                       # "DESC" + 96 bytes of data: 100
    assert value_size(at_bound) == 100
    await store.put_handle("88.118.8/fits", [at_bound], mode="create", actor="t")
    seq = await store.last_seq()
    with pytest.raises(InvalidValue, match="max_value_bytes"):
        await store.put_handle("88.118.8/big", [HandleValue(1, "DESC", b"x" * 97)], mode="create", actor="t")
    refs = HandleValue(1, "DESC", b"x" * 80, references=(Reference("88.118.8/a-long-ref", 1),))   # 84 + 4 + 18
    with pytest.raises(InvalidValue, match="max_value_bytes"):
        await store.put_handle("88.118.8/big", [refs], mode="create", actor="t")
    three = [HandleValue(i, "DESC", b"x" * 90) for i in (1, 2, 3)]           # 94 each, 282 in all
    with pytest.raises(InvalidValue, match="max_record_bytes"):
        await store.put_handle("88.118.8/fits", three, mode="replace", actor="t")
    results = await store.register_batch([("88.118.8/b1", [at_bound]), ("88.118.8/b2", three)],
                                         overwrite=False, actor="t")
    assert [r.code for r in results] == [RC.SUCCESS, RC.INVALID_VALUE]
    assert await store.get_handle("88.118.8/big") is None and await store.get_handle("88.118.8/b2") is None
    assert [v.data for v in (await store.get_handle("88.118.8/fits")).values] == [at_bound.data]
    assert [e.handle for e in await store.audit(since_seq=seq)] == ["88.118.8/b1"]


async def test_replace(store):
    await store.put_handle("88.118.8/r", [url(1, "a"), url(2, "b")], mode="create", actor="t")
    rec = await store.put_handle("88.118.8/r", [url(3, "c")], mode="replace", actor="t")
    assert [(v.index, v.data) for v in rec.values] == [(3, b"c")]
    new = await store.put_handle("88.118.8/fresh", [url(1, "a")], mode="replace", actor="t")
    assert new.handle == "88.118.8/fresh" and await store.count_handles() == 4   # with the two admins


async def test_conditional_writes(store):
    assert (await store.get_versioned("88.118.8/v")).version == ABSENT
    rec = await store.put_handle("88.118.8/v", [url(1, "a")], mode="create", actor="t", expect=ABSENT)
    got = await store.get_versioned("88.118.8/V")
    assert got.record == rec and len(got.version) == 64
    with pytest.raises(RecordChanged):                       # it exists now
        await store.put_handle("88.118.8/v", [url(1, "b")], mode="replace", actor="t", expect=ABSENT)
    await store.put_handle("88.118.8/v", [url(1, "b")], mode="replace", actor="t", expect=got.version)
    seq = await store.last_seq()
    with pytest.raises(RecordChanged):                       # the version read first is stale
        await store.put_handle("88.118.8/v", [url(1, "c")], mode="replace", actor="t", expect=got.version)
    with pytest.raises(RecordChanged):
        await store.delete_handle("88.118.8/v", actor="t", expect=got.version)
    assert await store.last_seq() == seq and (await store.get_handle("88.118.8/v")).values[0].data == b"b"
    await store.delete_handle("88.118.8/v", actor="t", expect=(await store.get_versioned("88.118.8/v")).version)
    assert await store.get_handle("88.118.8/v") is None


async def test_get_many(store):
    from protocol.identifier import parse_handle
    await store.put_handle("88.118.8/m1", [url(1, "a")], mode="create", actor="t")
    await store.set_prefix_state("88.118.8", "disabled", actor="t")
    got = await store.get_many([parse_handle("88.118.8/M1"), parse_handle("88.118.8/none")])
    assert got["88.118.8/m1"].record.values[0].data == b"a" and got["88.118.8/m1"].record.prefix_disabled
    assert got["88.118.8/none"].record is None and got["88.118.8/none"].version == ABSENT


async def test_reads_carry_the_prefix_state(store):
    await store.put_handle("88.118.8/ps", [url(1, "a")], mode="create", actor="t")
    assert not (await store.get_handle("88.118.8/ps")).prefix_disabled
    await store.set_prefix_state("88.118.8", "disabled", actor="t")
    assert (await store.get_handle("88.118.8/ps")).prefix_disabled
    assert not (await store.get_handle("0.NA/88.118")).prefix_disabled


async def test_delete_handle(store):
    await store.put_handle("88.118.8/d", [url(1, "a")], mode="create", actor="t")
    n = await store.count_handles()
    await store.delete_handle("88.118.8/D", actor="t")
    assert await store.get_handle("88.118.8/d") is None and await store.count_handles() == n - 1
    with pytest.raises(HandleNotFound):
        await store.delete_handle("88.118.8/d", actor="t")


async def test_bad_input_raises_registry_errors(store):
    with pytest.raises(InvalidValue):
        await store.put_handle("88.118.8/x", [url(1, "a")], mode="upsert", actor="t")
    for handle in ("no-slash", "88.118.8/", "/x", b"\xff/x", 12, "88.118.8/a\x00b"):
        with pytest.raises(InvalidHandleError):
            await store.get_handle(handle)
        with pytest.raises(InvalidHandleError):
            await store.put_handle(handle, [url(1, "a")], mode="replace", actor="t")
    for values in ([url(1, "a"), url(1, "b")], [url(0, "a")], [HandleValue(1, "URL", "text")],
                   ["not a value"], url(1, "a"), None, [HandleValue(1, "", b"")],
                   [HandleValue(1, "URL", b"", permissions=99)],
                   [HandleValue(1, "URL", b"", references=(("88.118.8/x", 1),))]):
        with pytest.raises(InvalidValue):
            await store.put_handle("88.118.8/x", values, mode="replace", actor="t")
    assert await store.get_handle("88.118.8/x") is None


async def test_prefix_rules(store):
    for handle in ("88.118.9/x", "88.118.8.1/x", "88.118/x"):
        with pytest.raises(PrefixNotFound) as err:
            await store.put_handle(handle, [url(1, "a")], mode="create", actor="t")
        assert err.value.code == RC.SERVER_NOT_RESPONSIBLE
    rec = await store.put_handle("0.NA/88.118.8", [url(1, "a")], mode="create", actor="t")
    assert rec.handle == "0.NA/88.118.8"


# -- identifiers: spelling ---------------------------------------------------------------------
async def test_case_insensitive_lookup_keeps_registered_spelling(store, place):
    await store.put_handle("88.118.8/AbC-Def", [url(1, "a")], mode="create", actor="t")
    for asked in ("88.118.8/abc-def", "88.118.8/ABC-DEF", "88.118.8/AbC-Def"):
        assert (await store.get_handle(asked)).handle == "88.118.8/AbC-Def"
    rec = await store.put_handle("88.118.8/abc-DEF", [url(1, "b")], mode="replace", actor="t")
    assert rec.handle == "88.118.8/AbC-Def"
    assert place.raw_row("88.118.8/abc-def")[:2] == ("88.118.8/AbC-Def", "88.118.8")
    await store.put_handle("88.118.8/É", [url(1, "upper")], mode="create", actor="t")   # only ASCII folds
    await store.put_handle("88.118.8/é", [url(1, "lower")], mode="create", actor="t")
    assert (await store.get_handle("88.118.8/É")).values[0].data == b"upper"


async def test_nfc(store):
    decomposed, composed = "88.118.8/caf" + "e\u0301", "88.118.8/caf\u00e9"
    rec = await store.put_handle(decomposed, [url(1, "a")], mode="create", actor="t")
    assert rec.handle == composed
    assert (await store.get_handle(decomposed)).handle == composed
    assert (await store.get_handle(composed)).handle == composed
    with pytest.raises(HandleExists):
        await store.put_handle(composed, [url(1, "a")], mode="create", actor="t")


async def listing(store, prefix: str, limit: int = 1000) -> list[str]:
    out, cursor = [], None
    while True:
        page = await store.list_handles(prefix, cursor=cursor, limit=limit)
        out += page.items
        if page.next is None:
            return out
        cursor = page.next


async def test_list_handles_pages_and_prefix_boundaries(store, hashes):
    await add_prefix(store, "88.118.80", hashes)
    await add_prefix(store, "88.118.8.1", hashes)
    names = [f"88.118.8/n{i:02d}" for i in range(25)]
    for name in reversed(names):
        await store.put_handle(name, [url(1, "a")], mode="create", actor="t")
    await store.put_handle("88.118.80/n00", [url(1, "a")], mode="create", actor="t")
    await store.put_handle("88.118.8.1/n00", [url(1, "a")], mode="create", actor="t")
    everything = await listing(store, "88.118.8")
    assert everything == ["88.118.8/ADMIN"] + names
    pages, cursor = [], None
    for _ in range(3):
        page = await store.list_handles("88.118.8", cursor=cursor, limit=10)
        pages.append(list(page.items))
        cursor = page.next
    assert [len(p) for p in pages] == [10, 10, 6] and cursor is None and sum(pages, []) == everything
    full = await store.list_handles("88.118.8", limit=26)
    assert len(full.items) == 26 and full.next is None          # exactly one page: no empty page after it
    assert await listing(store, "88.118.80") == ["88.118.80/ADMIN", "88.118.80/n00"]
    assert (await store.list_handles("88.118.99")).items == ()
    for bad in (dict(limit=0), dict(limit=10_001), dict(cursor="%%%"),
                dict(cursor=(await store.list_handles("88.118.80", limit=1)).next)):   # another prefix's cursor
        with pytest.raises(InvalidValue):
            await store.list_handles("88.118.8", **bad)


async def test_count_handles_tracks_every_write(store, place):
    await store.put_handle("88.118.8/c1", [url(1, "a")], mode="create", actor="t")
    await store.put_handle("88.118.8/c1", [url(1, "b")], mode="replace", actor="t")
    await store.register_batch([("88.118.8/c2", [url(1, "a")]), ("88.118.8/c1", [url(1, "a")])],
                               overwrite=True, actor="t")
    await store.delete_handle("88.118.8/c2", actor="t")
    assert await store.count_handles() == place.raw_count() == 3


# -- batches ---------------------------------------------------------------------------------
async def test_batch_of_2000_mixed(store, hashes, place):
    await add_prefix(store, "88.118.9", hashes)
    await store.set_prefix_state("88.118.9", "disabled", actor="t")
    await store.put_handle("88.118.8/exists", [url(1, "old")], mode="create", actor="t")
    seq, count = await store.last_seq(), await store.count_handles()
    items, expected = [], {}
    for i in range(2000):
        kind = i % 10
        if kind == 1:
            items.append((f"no-slash-{i}", [url(1, "x")])); expected[i] = RC.INVALID_HANDLE
        elif kind == 2:
            items.append((f"88.118.8/dup-index-{i}", [url(1, "x"), url(1, "y")])); expected[i] = RC.INVALID_VALUE
        elif kind == 3:
            items.append((f"88.118.77/{i}", [url(1, "x")])); expected[i] = RC.SERVER_NOT_RESPONSIBLE
        elif kind == 4:
            items.append((f"88.118.9/{i}", [url(1, "x")])); expected[i] = RC.INSUFFICIENT_PERMISSIONS
        elif kind == 5 and i < 100:
            items.append(("88.118.8/EXISTS", [url(1, "new")])); expected[i] = RC.HANDLE_ALREADY_EXISTS
        else:
            items.append((f"88.118.8/good-{i:04d}", [url(1, f"v{i}")])); expected[i] = RC.SUCCESS
    items[1999] = ("88.118.8/GOOD-0000", [url(1, "again")])       # same handle twice in one batch
    expected[1999] = RC.HANDLE_ALREADY_EXISTS
    items.append(("0.NA/batch", [url(1, "node's own")])); expected[2000] = RC.SUCCESS
    results = await store.register_batch(items, overwrite=False, actor="batcher")
    assert [r.code for r in results] == [expected[i] for i in range(len(items))]
    assert [r.handle for r in results] == [h for h, _ in items]
    assert all(r.message for r in results if r.code != RC.SUCCESS)
    good = [h for (h, _), r in zip(items, results) if r.code == RC.SUCCESS]
    assert await store.count_handles() == place.raw_count() == count + len(good)
    assert await listing(store, "88.118.8") == sorted(
        ["88.118.8/ADMIN", "88.118.8/exists"] + [h for h in good if h.startswith("88.118.8/")], key=str.lower)
    assert (await store.get_handle("88.118.8/exists")).values[0].data == b"old"
    assert (await store.get_handle("88.118.8/good-0000")).values[0].data == b"v0"
    audit = await store.audit(since_seq=seq, limit=0)
    logged = [(e.operation, e.handle, e.actor) for e in audit]
    if place.kind == "cluster":     # one write per shard: the audit keeps the order within each shard only
        logged.sort(key=lambda e: good.index(e[1]))
    assert logged == [("handle.create", h, "batcher") for h in good]


async def test_batch_overwrite_applies_items_in_order(store, place):
    await store.put_handle("88.118.8/o", [url(1, "old"), url(2, "gone")], mode="create", actor="t")
    seq = await store.last_seq()
    results = await store.register_batch([("88.118.8/O", [url(1, "first")]), ("88.118.8/n", [url(1, "n")]),
                                          ("88.118.8/o", [url(1, "second")])], overwrite=True, actor="t")
    assert [r.code for r in results] == [RC.SUCCESS] * 3
    rec = await store.get_handle("88.118.8/o")
    assert rec.handle == "88.118.8/o" and [(v.index, v.data) for v in rec.values] == [(1, b"second")]
    audit = await store.audit(since_seq=seq)
    if place.kind == "cluster":     # one write per shard: the audit keeps the order within each shard only
        audit.sort(key=lambda e: e.handle != "88.118.8/o")
        audit = [audit[0], audit[2], audit[1]]
    assert [e.operation for e in audit] == ["handle.replace", "handle.create", "handle.replace"]
    assert audit[0].after_digest == audit[2].before_digest        # the second saw the first
    assert audit[2].after_digest == hashlib.sha256(place.raw_row("88.118.8/o")[2]).hexdigest()


async def test_batch_with_nothing_good_writes_nothing(store):
    seq = await store.last_seq()
    results = await store.register_batch([("bad", []), ("88.118.8/x", "not values"), ("just a string",)],
                                         overwrite=False, actor="t")
    assert [r.code for r in results] == [RC.INVALID_HANDLE, RC.INVALID_VALUE, RC.INVALID_VALUE]
    assert await store.last_seq() == seq and await store.register_batch([], overwrite=True, actor="t") == []


# -- audit ---------------------------------------------------------------------------------------
async def test_audit_entries_and_digests(store, place):
    seq = await store.last_seq()
    created = await store.put_handle("88.118.8/au", [url(1, "a")], mode="create", actor="300:88.118.8/ADMIN")
    merged = await store.put_handle("88.118.8/au", [*created.values, url(2, "b")], mode="replace", actor="cli")
    with pytest.raises(HandleExists):
        await store.put_handle("88.118.8/au", [url(2, "b")], mode="create", actor="cli")
    await store.put_handle("88.118.8/au", [url(2, "b")], mode="replace", actor="cli")
    stored = place.raw_row("88.118.8/au")[2]
    await store.delete_handle("88.118.8/au", actor="cli")
    entries = await store.audit(since_seq=seq)
    assert [(e.operation, e.actor, e.handle) for e in entries] == [
        ("handle.create", "300:88.118.8/ADMIN", "88.118.8/au"), ("handle.replace", "cli", "88.118.8/au"),
        ("handle.replace", "cli", "88.118.8/au"), ("handle.delete", "cli", "88.118.8/au")]
    sha = lambda b: hashlib.sha256(b).hexdigest()      # noqa: E731
    assert entries[0].before_digest == ""
    assert entries[0].after_digest == sha(encode_values(created.values)) == entries[1].before_digest
    assert entries[1].after_digest == sha(encode_values(merged.values)) == entries[2].before_digest
    assert entries[2].after_digest == sha(stored) == entries[3].before_digest
    assert entries[3].after_digest == ""
    seqs = [e.seq for e in entries]
    assert seqs == sorted(set(seqs)) and seqs[-1] == await store.last_seq()
    assert all(e.at > 0 for e in entries)
    assert await store.audit(since_seq=seq, limit=2) == entries[:2]
    assert await store.audit(since_seq=seqs[1]) == entries[2:]


async def test_audit_of_node_and_prefix_operations(bare, hashes):
    node_admin = AdminIdentity("0.NA/88.118", 300, None, hashes[NODE_SECRET])
    await bare.initialise("88.118", node_admin, [seckey(NODE_SECRET)], actor="init")
    await add_prefix(bare, "88.118.8", hashes)
    await bare.set_prefix_state("88.118.8", "disabled", actor="ops")
    ops = [(e.operation, e.handle) for e in await bare.audit()]
    assert ops == [("node.initialise", "88.118"), ("handle.create", "0.NA/88.118"), ("admin.set", "0.NA/88.118"),
                   ("prefix.create", "88.118.8"), ("handle.create", "88.118.8/ADMIN"),
                   ("admin.set", "88.118.8/ADMIN"), ("prefix.state", "88.118.8")]
    last = (await bare.audit())[-1]
    assert last.before_digest != last.after_digest and len(last.after_digest) == 64


# -- secrets and admin identities -----------------------------------------------------------------
PLAIN = b"plaintext-secret-QWERTY-0123456789"


async def test_secret_is_encrypted_on_disk(store, place):
    rec = await store.put_handle("88.118.8/sec", [url(1, "a"), seckey(PLAIN, 301)], mode="create", actor="t")
    token = rec.values[1].data
    assert token != PLAIN and token[0] == 1
    assert (await store.get_handle("88.118.8/sec")).values[1].data == token      # still encrypted
    stored = place.stored_bytes()
    assert stored
    for data in stored:
        assert PLAIN not in data and ENT_SECRET.encode() not in data and NODE_SECRET.encode() not in data
    assert await store.admin_secret("88.118.8/SEC", 301) == PLAIN
    assert await store.admin_secret("88.118.8/sec", 1) is None                     # not a secret type
    assert await store.admin_secret("88.118.8/sec", 302) is None
    assert await store.admin_secret("88.118.8/nothing", 301) is None


async def test_sealed_value_round_trips_but_does_not_move(store):
    rec = await store.put_handle("88.118.8/sec", [seckey(PLAIN, 301)], mode="create", actor="t")
    again = await store.put_handle("88.118.8/sec", [url(1, "a"), *rec.values], mode="replace", actor="t")
    assert again.values[1].data == rec.values[0].data                               # not sealed twice
    assert await store.admin_secret("88.118.8/sec", 301) == PLAIN
    # The same token at another index (or handle) is not ours there: it is sealed as plain data.
    await store.put_handle("88.118.8/sec", [*again.values, seckey(rec.values[0].data, 302)], mode="replace",
                           actor="t")
    assert await store.admin_secret("88.118.8/sec", 302) == rec.values[0].data
    await store.put_handle("88.118.8/other", [seckey(rec.values[0].data, 301)], mode="create", actor="t")
    assert await store.admin_secret("88.118.8/other", 301) == rec.values[0].data


async def test_damaged_ciphertext_fails_cleanly(store, place):
    rec = await store.put_handle("88.118.8/sec", [seckey(PLAIN, 301)], mode="create", actor="t")
    token = bytearray(rec.values[0].data)
    token[-1] ^= 1
    blob = encode_values([rec.values[0].with_(data=bytes(token))])
    place.set_raw_blob("88.118.8/sec", blob)
    with pytest.raises(NodeKeyError):
        await store.admin_secret("88.118.8/sec", 301)


async def test_wrong_node_key_fails_cleanly(store, place):
    other = Registry(place.backend(), NodeKey.generate())
    with pytest.raises(NodeKeyError, match="wrong node.key"):
        await other.open()
    with pytest.raises(StoreUnavailable):               # it stayed closed
        await other.get_handle("88.118.8/ADMIN")
    await other.close()


async def test_admin_follows_its_secret(store):
    admin = await store.get_admin("88.118.8/ADMIN", 300)
    # Values rewritten with the same sealed secret: identity untouched.
    rec = await store.get_handle("88.118.8/ADMIN")
    await store.put_handle("88.118.8/ADMIN", [*rec.values, url(1, "x")], mode="replace", actor="t")
    assert await store.get_admin("88.118.8/ADMIN", 300) == admin
    # The same secret given again in plain text: no new hash either.
    others = [v for v in (await store.get_handle("88.118.8/ADMIN")).values if v.index != 300]
    await store.put_handle("88.118.8/ADMIN", [*others, seckey(ENT_SECRET)], mode="replace", actor="t")
    assert await store.get_admin("88.118.8/ADMIN", 300) == admin
    # A new secret in plain text: the password hash follows it.
    await store.put_handle("88.118.8/ADMIN", [*others, seckey("rotated-secret-000001")], mode="replace", actor="t")
    rotated = await store.get_admin("88.118.8/ADMIN", 300)
    assert verify_password("rotated-secret-000001", rotated.password_hash)
    assert not verify_password(ENT_SECRET, rotated.password_hash)
    # The secret removed: the identity is revoked.
    seq = await store.last_seq()
    await store.put_handle("88.118.8/ADMIN", others, mode="replace", actor="t")
    assert await store.get_admin("88.118.8/ADMIN", 300) is None
    assert await ops_since(store, seq) == [("handle.replace", "88.118.8/ADMIN"),
                                           ("admin.revoke", "88.118.8/ADMIN")]


async def test_batch_overwrite_keeps_admins_in_step(store):
    await store.register_batch([("88.118.8/ADMIN", [url(1, "no secret any more")])], overwrite=True, actor="t")
    assert await store.get_admin("88.118.8/ADMIN", 300) is None


async def test_delete_handle_revokes_admin(store, hashes):
    seq = await store.last_seq()
    await store.delete_handle("88.118.8/ADMIN", actor="t")
    assert await store.get_admin("88.118.8/ADMIN", 300) is None
    assert await ops_since(store, seq) == [("admin.revoke", "88.118.8/ADMIN"), ("handle.delete", "88.118.8/ADMIN")]


async def test_set_admin_password(store, hashes):
    new_hash = hashes[NODE_SECRET]            # any valid hash of a known secret
    await store.set_prefix_state("88.118.8", "disabled", actor="t")      # rotation works while disabled
    await store.set_admin_password(AdminIdentity("88.118.8/ADMIN", 300, "88.118.8", new_hash),
                                   seckey(NODE_SECRET), actor="t")
    admin = await store.get_admin("88.118.8/admin", 300)
    assert admin.password_hash == new_hash and admin.scope == "88.118.8"
    assert await store.admin_secret("88.118.8/ADMIN", 300) == NODE_SECRET.encode()
    # A second identity on a new handle: the handle is created.
    await store.set_prefix_state("88.118.8", "enabled", actor="t")
    await store.set_admin_password(AdminIdentity("88.118.8/OPS", 301, "88.118.8", new_hash),
                                   seckey(NODE_SECRET, 301), actor="t")
    assert [v.index for v in (await store.get_handle("88.118.8/ops")).values] == [301]
    for admin, value, error in [
        (AdminIdentity("88.118.8/ADMIN", 300, "88.118.8", new_hash), url(300, "x"), InvalidValue),
        (AdminIdentity("88.118.8/ADMIN", 300, "88.118.8", new_hash), seckey("s", 301), InvalidValue),
        (AdminIdentity("88.118.8/ADMIN", 300, None, new_hash), seckey("s"), InvalidValue),
        (AdminIdentity("88.118.8/ADMIN", 300, "88.118.9", new_hash), seckey("s"), InvalidValue),
        (AdminIdentity("88.118.8/ADMIN", 300, "88.118.8", "plain"), seckey("s"), InvalidValue),
        (AdminIdentity("88.118.9/ADMIN", 300, "88.118.9", new_hash), seckey("s"), PrefixNotFound),
    ]:
        with pytest.raises(error):
            await store.set_admin_password(admin, value, actor="t")
    assert (await store.get_admin("88.118.8/ADMIN", 300)).password_hash == new_hash


async def test_get_admin_bad_index(store):
    assert await store.get_admin("88.118.8/ADMIN", 301) is None
    with pytest.raises(InvalidValue):
        await store.get_admin("88.118.8/ADMIN", -1)


# -- files, connections, locking ------------------------------------------------------------------
async def test_two_instances_share_one_file(store, place, node_key):
    other = Registry(place.backend(), node_key)
    await other.open()
    try:
        await store.put_handle("88.118.8/shared", [url(1, "from a")], mode="create", actor="a")
        assert (await other.get_handle("88.118.8/SHARED")).values[0].data == b"from a"
        await other.put_handle("88.118.8/shared", [url(1, "from a"), url(2, "from b")], mode="replace", actor="b")
        assert [v.data for v in (await store.get_handle("88.118.8/shared")).values] == [b"from a", b"from b"]
        assert await store.last_seq() == await other.last_seq()
        assert (await store.audit(since_seq=await store.last_seq() - 1))[0].actor == "b"
        assert await store.count_handles() == await other.count_handles()
    finally:
        await other.close()


async def test_closed_store(place, node_key):
    store = Registry(place.backend(), node_key)
    with pytest.raises(StoreUnavailable):
        await store.count_handles()
    with pytest.raises(StoreUnavailable):
        await store.put_handle("0.NA/x", [url(1, "a")], mode="create", actor="t")
    await store.open()
    await store.open()                  # idempotent
    await store.close()
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get_handle("0.NA/x")


async def test_concurrent_writers_lose_no_update(store):
    await store.put_handle("88.118.8/shared", [url(1, "base")], mode="create", actor="t")
    n = await store.count_handles()

    async def add(i: int) -> None:        # read, add a value, write back only if nobody wrote meanwhile
        while True:
            got = await store.get_versioned("88.118.8/shared")
            try:
                await store.put_handle("88.118.8/shared", [*got.record.values, url(100 + i, str(i))],
                                       mode="replace", actor="t", expect=got.version)
                return
            except RecordChanged:
                continue

    await asyncio.gather(*(store.put_handle(f"88.118.8/c{i}", [url(1, str(i))], mode="create", actor="t")
                           for i in range(50)), *(add(i) for i in range(20)))
    assert await store.count_handles() == n + 50
    assert len((await store.get_handle("88.118.8/shared")).values) == 21        # every merge kept
    seqs = [e.seq for e in await store.audit(limit=0)]
    assert len(seqs) == len(set(seqs)) == 6 + 1 + 50 + 20 and seqs == sorted(seqs)   # fixture, shared, creates, merges


# -- secrets of every spelling ----------------------------------------------------------------------
@pytest.mark.parametrize("type_", ["HS_SECKEY", "hs_seckey", "HS_SECKEY.backup", "Hs_SecKey.old.2"])
async def test_every_spelling_of_a_secret_type_is_sealed(store, place, type_):
    rec = await store.put_handle("88.118.8/sp", [HandleValue(301, type_, PLAIN)], mode="create", actor="t")
    assert rec.values[0].data != PLAIN and rec.values[0].data[0] == 1
    assert PLAIN not in place.raw_row("88.118.8/sp")[2]
    assert await store.admin_secret("88.118.8/sp", 301) == PLAIN
    results = await store.register_batch([("88.118.8/sp2", [HandleValue(5, type_, PLAIN)])], overwrite=True,
                                         actor="t")
    assert results[0].code == RC.SUCCESS and PLAIN not in place.raw_row("88.118.8/sp2")[2]


async def test_lookalike_types_are_not_secrets(store):
    rec = await store.put_handle("88.118.8/la", [HandleValue(1, "HS_SECKEYS", PLAIN),
                                                 HandleValue(2, "X.HS_SECKEY", PLAIN)], mode="create", actor="t")
    assert [v.data for v in rec.values] == [PLAIN, PLAIN]


# -- what changed: listeners in this process, the feed for every process ---------------------------------
async def test_write_listeners_hear_every_change_before_the_write_returns(store):
    heard: list[Changes] = []
    store.add_write_listener(heard.append)
    await store.put_handle("88.118.8/w1", [url(1, "a")], mode="create", actor="t")
    await store.register_batch([("88.118.8/w2", [url(1, "a")]), ("bad", [])], overwrite=False, actor="t")
    await store.delete_handle("88.118.8/W1", actor="t")
    await store.set_prefix_state("88.118.8", "disabled", actor="t")
    with pytest.raises(PrefixDisabled):
        await store.put_handle("88.118.8/w3", [url(1, "a")], mode="create", actor="t")
    store.remove_write_listener(heard.append)
    await store.set_prefix_state("88.118.8", "enabled", actor="t")
    assert heard == [Changes(("88.118.8/w1",)), Changes(("88.118.8/w2",)), Changes(("88.118.8/w1",)),
                     Changes(prefixes=("88.118.8",))]


async def test_the_feed_carries_writes_of_other_instances(store, place, node_key):
    other = Registry(place.backend(), node_key)
    await other.open()
    feed = store.changes(poll_interval=0.01)
    try:
        first = asyncio.ensure_future(feed.__anext__())
        await asyncio.sleep(0.05)          # the feed starts from "now": let it take its first look
        await other.put_handle("88.118.8/f1", [url(1, "a")], mode="create", actor="b")
        await other.set_prefix_state("88.118.8", "disabled", actor="b")
        created = await other.get_versioned("88.118.8/f1")
        seen = await asyncio.wait_for(first, 10)
        while seen.handles == ("88.118.8/f1",) and not seen.prefixes:
            more = await asyncio.wait_for(feed.__anext__(), 10)
            seen = Changes(seen.handles, more.prefixes, versions=seen.versions)
        # each identifier with the digest its last change left it with: a cache holding that keeps its entry
        assert seen == Changes(("88.118.8/f1",), ("88.118.8",), versions=(created.version,))
    finally:
        await feed.aclose()
        await other.close()
