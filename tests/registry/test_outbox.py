"""The outbox of prefix changes to publish to the top-level node
(registry.outbox), the same on every backend: marked in the change's own
transaction, one entry per prefix however many changes, settled only at the
version published."""

from __future__ import annotations

from protocol.identifier import handle_key
from protocol.values import HandleValue
from registry import provision

from .conftest import add_prefix

SITE = HandleValue(1, "HS_SITE", b"\x00" * 8)


async def test_every_change_of_a_prefix_marks_it_once_and_only_the_latest_settles(store, hashes):
    pending = await store.outbox()
    assert [(p.prefix, p.version) for p in pending.values()] == [("88.118.8", 1)]     # its creation
    await store.outbox_settle("88.118.8", 1)
    assert await store.outbox() == {}
    for _ in range(50):                                      # many changes: still one entry, the version grows
        await store.set_prefix_state("88.118.8", "disabled", actor="t")
        await store.set_prefix_state("88.118.8", "enabled", actor="t")
    await provision.delegate_prefix(store, "88.118.8", SITE, actor="t")
    (item,) = (await store.outbox()).values()
    assert item.version == 101 and item.tries == 0
    await store.outbox_failed("88.118.8", item.version, "top-level node away", due=123.0)
    (failed,) = (await store.outbox()).values()
    assert (failed.tries, failed.error, failed.due, failed.since) == (1, "top-level node away", 123.0, item.since)
    assert not await store.outbox_settle("88.118.8", item.version - 1)      # an older version published: kept
    assert await store.outbox_settle("88.118.8", item.version)
    assert await store.outbox() == {}


async def test_only_prefixes_allocated_here_are_marked(store, hashes):
    await store.outbox_settle("88.118.8", 1)
    await store.put_handle("0.NA/88.118.77", [SITE], mode="create", actor="t")    # a record from below: not ours
    await store.put_handle("88.118.8/x", [HandleValue(1, "URL", b"u")], mode="create", actor="t")
    assert await store.outbox() == {}
    await add_prefix(store, "88.118.9", hashes)
    assert await store.outbox_mark_all() == 2
    assert sorted(p.prefix for p in (await store.outbox()).values()) == ["88.118.8", "88.118.9"]
    assert set(await store.outbox()) == {handle_key("88.118.8"), handle_key("88.118.9")}


async def test_one_publisher_holds_the_lease_until_it_lets_go_or_it_runs_out(store):
    first = await store.outbox_lease("a", 30.0)
    assert first > 0
    assert await store.outbox_lease("b", 30.0) == 0.0                  # held by another
    assert await store.outbox_lease("a", 30.0) >= first                # its holder renews it
    await store.outbox_lease("a", 0.0)                                 # let go (a node stopping)
    assert await store.outbox_lease("b", 30.0) > 0
    await store.outbox_lease("b", -1.0)                                # ... or ran out
    assert await store.outbox_lease("a", 30.0) > 0
