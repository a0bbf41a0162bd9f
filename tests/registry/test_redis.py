"""What only the Redis backend has: its URLs, its key layout, corrupt keys,
replicas it waits for, and a commit sent twice."""

from __future__ import annotations

import asyncio
import logging

import pytest

from protocol.codes import RC
from registry import open_store
from registry.backend import Row
from registry.errors import CorruptRecord, NotInitialised, StoreUnavailable
from registry.redis_backend import RedisBackend
from registry.redis_failures import RedisFailures
from registry.redis_keys import FAIL_WAYS, GLOBAL, RedisOptions, audit, failure_bucket, parse_url, row, shard
from registry.redis_tx import RedisTx
from registry.rules import Registry

from .conftest import url


# The shared `place` fixture (tests/registry/conftest.py), on the Redis backends only.
on_redis = pytest.mark.parametrize("place", ["redis", "cluster"], indirect=True)


@pytest.mark.parametrize("text, cluster, nodes, db, tls", [
    ("redis://127.0.0.1:7000/3", False, (("127.0.0.1", 7000),), 3, False),
    ("redis://localhost", False, (("localhost", 6379),), 0, False),
    ("rediss://user:p%40ss@cache.example:6380/0", False, (("cache.example", 6380),), 0, True),
    ("redis+cluster://10.0.0.1:7001,10.0.0.2:7002", True, (("10.0.0.1", 7001), ("10.0.0.2", 7002)), 0, False),
    ("redis://[::1]:7000", False, (("::1", 7000),), 0, False),
])
def test_store_urls(text, cluster, nodes, db, tls):
    t = parse_url(text)
    assert (t.cluster, t.nodes, t.db, t.tls) == (cluster, nodes, db, tls)


def test_a_password_in_the_url_is_kept_but_never_shown():
    t = parse_url("rediss://idnode:s3cret%21@cache.example:6380/1")
    assert (t.username, t.password) == ("idnode", "s3cret!")
    assert "s3cret" not in repr(t) and "s3cret" not in repr(RedisBackend("rediss://idnode:s3cret@h:1/0"))


@pytest.mark.parametrize("text, needle", [
    ("redis://a:1,b:2/0", "names one server"),
    ("redis://host:99999/0", "bad host"),
    ("redis://host:1/zero", "bad database"),
    ("redis+cluster://a:1/2", "bad database"),
    ("memcached://a:1", "not a Redis store URL"),
    ("redis://:1/0", "bad host"),
])
def test_bad_store_urls_are_refused_clearly(text, needle):
    with pytest.raises(StoreUnavailable, match=needle):
        parse_url(text)


def test_open_store_picks_redis_and_keeps_the_key_in_the_home(tmp_path):
    with pytest.raises(NotInitialised, match="node key"):
        open_store("redis://127.0.0.1:1/0", home=tmp_path / "none", create=False)
    store = open_store("redis+cluster://127.0.0.1:1", home=tmp_path / "home")
    assert isinstance(store.backend, RedisBackend) and store.backend.options.replicas == 1
    assert (tmp_path / "home" / "node.key").exists()
    with pytest.raises(StoreUnavailable, match="unknown store URL scheme"):
        open_store("mysql://x", home=tmp_path / "home")


async def test_an_unreachable_redis_is_store_unavailable(tmp_path, node_key):
    from bench.redisproc import free_port
    store = Registry(RedisBackend(f"redis://127.0.0.1:{free_port()}/0", RedisOptions(timeout=0.2)), node_key)
    with pytest.raises(StoreUnavailable, match="cannot reach the Redis store"):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.get_handle("88.118.8/x")


# -- keys the node did not write ---------------------------------------------------------------
@on_redis
async def test_a_key_of_another_type_is_a_corrupt_record_and_nothing_is_written(store, place, caplog):
    await store.put_handle("88.118.8/ok", [url(1, "a")], mode="create", actor="t")
    r = place._redis()
    r.delete(row("88.118.8/bad"))
    r.set(row("88.118.8/bad"), b"someone else's")
    seq, count = await store.last_seq(), await store.count_handles()
    caplog.set_level(logging.ERROR, logger="idnode.registry.redis")
    with pytest.raises(CorruptRecord) as err:
        await store.get_handle("88.118.8/bad")
    assert err.value.code == RC.ERROR and "88.118.8/bad" in str(err.value)
    assert any("88.118.8/bad" in rec.getMessage() for rec in caplog.records)
    with pytest.raises(CorruptRecord):
        await store.put_handle("88.118.8/bad", [url(1, "b")], mode="replace", actor="t")
    with pytest.raises(CorruptRecord):
        await store.register_batch([("88.118.8/bad", [url(1, "c")])], overwrite=True, actor="t")
    assert (await store.last_seq(), await store.count_handles()) == (seq, count)
    assert r.get(row("88.118.8/bad")) == b"someone else's"
    assert (await store.get_handle("88.118.8/ok")).values[0].data == b"a"       # the rest is served


@on_redis
async def test_a_record_failing_its_check_is_corrupt(store, place):
    await store.put_handle("88.118.8/x", [url(1, "a")], mode="create", actor="t")
    place._redis().hset(row("88.118.8/x"), "b", b"\xa1\x01\x02")          # values changed behind the node
    with pytest.raises(CorruptRecord):
        await store.get_handle("88.118.8/x")
    place._redis().hset(row("88.118.8/y"), mapping={"h": "88.118.8/y"})       # a record half there
    with pytest.raises(CorruptRecord):
        await store.get_handle("88.118.8/y")


# -- layout -------------------------------------------------------------------------------------------
@on_redis
async def test_identifier_writes_touch_only_their_shards_keys(store, place):
    r = place._redis()
    node_wide = sorted(set(r.keys(f"idn:{{{GLOBAL}}}:*") if place.kind == "redis" else
                           r.keys(f"idn:{{{GLOBAL}}}:*", target_nodes=r.PRIMARIES)))
    before = {k: r.dump(k) for k in node_wide}
    handles = [f"88.118.8/spread-{i}" for i in range(200)]
    await store.register_batch([(h, [url(1, "a")]) for h in handles], overwrite=False, actor="t")
    for h in handles[:20]:
        await store.put_handle(h, [url(1, "b")], mode="replace", actor="t")
    assert {k: r.dump(k) for k in node_wide} == before             # no node-wide key moved
    streams = {shard(h.lower()) for h in handles}
    assert len(streams) > 32                                          # spread over the shards
    assert sum(r.xlen(audit(t)) for t in streams) >= 220


@on_redis
async def test_a_commit_sent_twice_is_written_once(store, place):
    """A lost reply makes redis-py send the script again: the second finds its own token."""
    backend: RedisBackend = store.backend
    tx = RedisTx(backend._sync, 1.0, backend.corrupt)
    tx.rows(["88.118.8/twice"])
    tx.put_rows([Row("88.118.8/twice", "88.118.8/twice", "88.118.8", b"\x80")])
    ops = tx.ops
    checks = list(tx.checks.items())
    assert backend._commit_group("same-token", checks, ops) is True
    assert backend._commit_group("same-token", checks, ops) is True           # the retry: no second write
    assert backend._commit_group("other-token", checks, ops) is False         # anyone else: a conflict
    assert place._redis().hget(row("88.118.8/twice"), "v") == b"same-token"


async def test_a_write_short_of_its_replicas_fails(redis_server, node_key, hashes):
    """A single Redis has no replica: a store that asks for one refuses every write."""
    redis_server.client().flushall()
    store = Registry(RedisBackend(redis_server.url, RedisOptions(replicas=1, replica_timeout=0.05)), node_key)
    with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
        await store.open()            # its first write (the key check) already
    await store.close()


# -- failed-login counts shared by the instances (registry.redis_failures) --------------------------
@on_redis
async def test_failure_counts_are_shared_exact_and_windowed(store, place):
    other = place.backend()                  # another instance's connection to the same store
    await other.open()
    try:
        mine, theirs = store.failure_counts(), other.failure_counts()
        counts = await asyncio.gather(*(c.add_failure("10.0.0.9", 1000, 300) for c in [mine, theirs] * 100))
        assert sorted(counts) == list(range(1, 201))               # no failure lost, none counted twice
        assert await theirs.failures("10.0.0.9", 1300, 300) == 200
        assert await mine.failures("10.0.0.9", 1301, 300) == 0       # the window from the first failure ended
        assert await mine.add_failure("10.0.0.9", 1301, 300) == 1
        assert await theirs.failures("10.0.0.8", 1301, 300) == 0
    finally:
        await other.close()


@on_redis
async def test_failure_counts_are_a_bounded_table(store, place):
    """Far more sources than a bucket holds: each bucket keeps FAIL_WAYS, a
    newcomer takes the stalest place, and a bucket expires after its window."""
    bucket = failure_bucket("victim")
    crowd = [s for s in (f"10.1.{i // 256}.{i % 256}" for i in range(200_000)) if failure_bucket(s) == bucket][:20]
    assert len(crowd) == 20
    counts = store.failure_counts()
    await counts.add_failure("victim", 1000, 300)
    for n, source in enumerate(crowd):
        assert await counts.add_failure(source, 1001 + n, 300) == 1
    r = place._redis()
    assert r.hlen(bucket) == FAIL_WAYS
    assert await counts.failures("victim", 1100, 300) == 0            # the stalest went first
    assert await counts.failures(crowd[-1], 1100, 300) == 1
    assert 0 < r.ttl(bucket) <= 301


async def test_lockout_counts_alone_while_the_store_is_away():
    from redis import asyncio as aredis

    from bench.redisproc import free_port
    from resolver.core.errors import Refused
    from resolver.core.lockout import Lockout
    from resolver.settings import AuthSettings
    from resolver.shared import SharedState
    away = RedisFailures(lambda: aredis.Redis(port=free_port(), socket_connect_timeout=0.2))
    with pytest.raises(StoreUnavailable):
        await away.add_failure("10.0.0.1", 1000, 300)
    lock = Lockout(SharedState.private(), AuthSettings(failure_delay=0, lockout_failures=2), everywhere=away)
    await lock.failed("10.0.0.1")
    await lock.check("10.0.0.1")
    await lock.failed("10.0.0.1")
    with pytest.raises(Refused):
        await lock.check("10.0.0.1")                 # locked out by this node's own count


# -- reads waiting on Redis are bounded ----------------------------------------------------------------
@on_redis
async def test_reads_past_the_bound_fail_at_once_and_the_rest_are_answered(store, place, node_key):
    await store.put_handle("88.118.8/read-0", [url(1, "a")], mode="create", actor="t")
    bounded = Registry(place.backend(max_reads_waiting=4), node_key)
    await bounded.open()
    try:
        got = await asyncio.gather(*(bounded.get_handle("88.118.8/read-0") for _ in range(10)),
                                   return_exceptions=True)
        refused = [g for g in got if isinstance(g, StoreUnavailable)]
        assert len(refused) == 6 and "store.max_reads_waiting" in str(refused[0])
        assert [g.values[0].data for g in got if not isinstance(g, BaseException)] == [b"a"] * 4
        assert bounded.reads_waiting() == 0                  # every waiting read was answered
        assert (await bounded.get_handle("88.118.8/read-0")).values[0].data == b"a"
    finally:
        await bounded.close()


# -- a slot moving between masters under writes (MOVED, ASK, TRYAGAIN) ------------------------------
@pytest.mark.parametrize("place", ["cluster"], indirect=True)
async def test_a_slot_migrating_under_writes_leaves_nothing_half_written(store, place, node_key):
    """One shard's slot moves to another master, its keys half-way across
    while writes go on (the masters answer ASK and TRYAGAIN, then MOVED):
    each write is acknowledged whole or refused (RC 3), never half there."""
    from redis.crc import key_slot
    tag = shard("88.118.8/mig-0")
    handles = [h for h in (f"88.118.8/mig-{i}" for i in range(20_000)) if shard(h) == tag][:40]
    for h in handles[:20]:                              # half exist before the move, half are created during it
        await store.put_handle(h, [url(1, "before")], mode="create", actor="t")
    count = await store.count_handles()
    slot = key_slot(row(handles[0]).encode())
    rc = place._redis()
    src = next(s for s in place.server.masters() if s.port == rc.get_node_from_key(row(handles[0])).port)
    dst = next(s for s in place.server.masters() if s is not src)
    src_id, dst_id = (s.client().execute_command("CLUSTER MYID") for s in (src, dst))
    dst.client().execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    src.client().execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    keys = src.client().execute_command("CLUSTER GETKEYSINSLOT", slot, 10_000)
    assert len(keys) > 20
    moved = {row(h) for h in handles[:10]}               # some records; their audit stream stays
    assert moved < {k.decode() if isinstance(k, bytes) else k for k in keys}
    src.client().migrate("127.0.0.1", dst.port, list(moved), 0, 5000)

    # Half-way: a write whose keys are split between the masters cannot commit; it fails whole, in time.
    hurried = Registry(place.backend(deadline=0.3), node_key)
    await hurried.open()
    try:
        seq = await store.last_seq()
        with pytest.raises(StoreUnavailable):
            await hurried.put_handle(handles[0], [url(1, "split")], mode="replace", actor="t")
        assert await store.last_seq() == seq
    finally:
        await hurried.close()

    acked: dict[str, str] = {}

    writes_acked = 0

    async def write(h: str, value: str) -> None:
        nonlocal writes_acked
        try:
            await store.put_handle(h, [url(1, value)], mode="replace", actor="t")
            acked[h] = value
            writes_acked += 1
        except StoreUnavailable:
            pass                 # refused whole (RC 3): allowed while the slot moves; checked below

    async def finish_the_move() -> None:
        await asyncio.sleep(0.2)
        rest = src.client().execute_command("CLUSTER GETKEYSINSLOT", slot, 10_000)
        if rest:
            src.client().migrate("127.0.0.1", dst.port, rest, 0, 5000)
        for s in place.server.masters():
            s.client().execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)

    mover = asyncio.create_task(finish_the_move())
    for r in range(6):
        await asyncio.gather(*(write(h, f"round-{r}") for h in handles))
    await mover
    await asyncio.gather(*(write(h, "after") for h in handles))
    assert acked and all(acked[h] == "after" for h in handles)          # once moved, every write goes through

    # Nothing half-written: every record passes its check, its listing entry, audit entries and the count agree.
    listed = set((await store.list_handles("88.118.8", limit=1000)).items)
    for h in handles:
        assert (await store.get_handle(h)).values[0].data == b"after"
        assert h in listed
    assert await store.count_handles() == count + 20                  # the 20 created during the move
    assert len([e for e in await store.audit(since_seq=0, limit=0) if e.handle.startswith("88.118.8/mig-")]) \
        == 20 + writes_acked


def test_a_fault_inside_redis_py_counts_as_the_store_away_and_ours_does_not():
    """redis-py's cluster client, mid-failover, has failed with AttributeError
    on a connection it had just dropped (a CI run of the failover test): that
    is the store away (RC 3), while the same error in the node's code is a bug."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from registry.redis_faults import client_fault
    scope = {"__name__": "redis.asyncio.connection"}
    exec("def send(writer):\n    writer.writelines([b'PING'])\n", scope)

    def caught(fn):
        try:
            fn()
        except Exception as exc:      # noqa: BLE001
            return exc
        raise AssertionError("nothing raised")

    assert client_fault(caught(lambda: scope["send"](None)))               # inside redis-py
    assert not client_fault(caught(lambda: None.writelines([])))           # in our code: a bug, not an outage
    assert client_fault(RedisConnectionError("gone"))
