"""Several node instances on one Redis registry, and what happens when Redis
goes away: real `idnode serve` processes, real redis-server processes the
tests start on free loopback ports (tests/redis_servers.py)."""

from __future__ import annotations

import asyncio
import shutil
import time

import aiohttp
import pytest

from bench import redisproc as redis_servers
from protocol.codes import RC
from resolver.hs.client import HandleClient, HandleResponseError
from tests.conftest import basic
from tests.processes import DEADLINE, run, serving_workers

ENT_PASSWORD = "enterprise-secret-0001"
ADMIN = basic("300:88.118.8/ADMIN", ENT_PASSWORD)
SEEN_WITHIN = 10.0        # a bound on how stale another instance may be (the promise is 1 s), not a timing


def idnode(home, *args, store: str, input: str | None = None) -> str:
    proc = run("--store", store, *args, home=home, input=input)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def shared_homes(tmp_path, store: str) -> tuple:
    """A node (88.118, enterprise prefix 88.118.8) on ``store``, and a second
    home for another instance: the same key files, copied."""
    a, b = tmp_path / "a", tmp_path / "b"
    idnode(a, "init", store=store)
    idnode(a, "prefix", "create", "88.118.8", "--owner", "Acme", "--password-stdin", store=store,
           input=ENT_PASSWORD + "\n")
    shutil.copytree(a, b)
    return a, b


def value(i: int, r: int) -> str:
    return f"https://acme.example/{i}/round-{r}"


async def put(session, url: str, handle: str, data: str) -> aiohttp.ClientResponse:
    return await session.put(f"{url}/api/handles/{handle}", headers=ADMIN,
                             json={"values": [{"index": 1, "type": "URL", "data": data}]})


async def resolved(session, url: str, handle: str) -> str | None:
    async with session.get(f"{url}/api/handles/{handle}") as r:
        if r.status != 200:
            return None
        return (await r.json())["values"][0]["data"]["value"]


@pytest.fixture
def redis_server(tmp_path):
    server = redis_servers.Server(redis_servers.free_port(), tmp_path / "redis").start()
    yield server
    server.stop()


async def test_a_write_on_one_instance_is_read_on_the_other_a_thousand_times(tmp_path, redis_server):
    """Instance B has the old value cached each time A writes: only the change
    feed can show it the new one."""
    a_home, b_home = shared_homes(tmp_path, redis_server.url)
    env = {"IDNODE_STORE": redis_server.url}
    handles = [f"88.118.8/two-{i}" for i in range(50)]
    with serving_workers(a_home, 1, env) as a, serving_workers(b_home, 1, env) as b:
        async with aiohttp.ClientSession() as session:
            for r in range(20):                                   # 20 rounds of 50: 1,000 writes, each read on B
                puts = await asyncio.gather(*(put(session, a.url, h, value(i, r)) for i, h in enumerate(handles)))
                assert [p.status for p in puts] == [200 if r else 201] * len(handles)
                written = time.monotonic()
                pending = dict(enumerate(handles))
                while pending:
                    got = await asyncio.gather(*(resolved(session, b.url, h) for h in pending.values()))
                    for i, seen in zip(list(pending), got):
                        if seen == value(i, r):
                            del pending[i]
                    assert time.monotonic() - written < SEEN_WITHIN, f"round {r}: B still serves the old value"
    assert not a.events("error") and not b.events("error")


async def test_writers_of_one_record_on_two_instances_all_get_through(tmp_path, redis_server):
    """Six writers of each of ten records at once, through both instances:
    conflicting writes are tried again (with growing random pauses) until
    each goes through, and both instances then serve a value of the last round."""
    a_home, b_home = shared_homes(tmp_path, redis_server.url)
    env = {"IDNODE_STORE": redis_server.url}
    with serving_workers(a_home, 1, env) as a, serving_workers(b_home, 1, env) as b:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for r in range(5):
                puts = await asyncio.gather(*(put(session, (a.url, b.url)[i % 2], f"88.118.8/busy-{i % 10}",
                                                  value(i, r)) for i in range(60)))
                statuses += [p.status for p in puts]
            assert set(statuses) <= {200, 201} and statuses.count(201) == 10
            last = {f"88.118.8/busy-{i % 10}": set() for i in range(10)}
            for i in range(60):
                last[f"88.118.8/busy-{i % 10}"].add(value(i, 4))
            deadline = time.monotonic() + SEEN_WITHIN
            for url in (a.url, b.url):
                for h, written in last.items():
                    while await resolved(session, url, h) not in written:
                        assert time.monotonic() < deadline, f"{h} on {url} never showed the last round"
                        await asyncio.sleep(0.05)


async def test_failed_logins_on_one_instance_lock_the_source_out_of_the_other(tmp_path, redis_server):
    """Wrong secrets from 127.0.0.2 sent to A lock that source out of B too,
    even with the right secret; the real admin on 127.0.0.1 keeps writing
    through both. The counts live in Redis (registry.redis_failures)."""
    a_home, b_home = shared_homes(tmp_path, redis_server.url)
    env = {"IDNODE_STORE": redis_server.url, "IDNODE_AUTH_LOCKOUT_FAILURES": "3", "IDNODE_AUTH_FAILURE_DELAY": "0"}

    async def put_from(source: str, url: str, handle: str, password: str) -> int:
        connector = aiohttp.TCPConnector(force_close=True, local_addr=(source, 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.put(f"{url}/api/handles/{handle}", headers=basic("300:88.118.8/ADMIN", password),
                                   json={"values": [{"index": 1, "type": "URL", "data": "https://a.example/"}]}) as r:
                return r.status

    with serving_workers(a_home, 1, env) as a, serving_workers(b_home, 1, env) as b:
        assert [await put_from("127.0.0.2", a.url, f"88.118.8/guess-{i}", "wrong") for i in range(3)] == [401] * 3
        assert await put_from("127.0.0.2", b.url, "88.118.8/late", ENT_PASSWORD) == 401     # locked out on B too
        assert await put_from("127.0.0.1", b.url, "88.118.8/real-b", ENT_PASSWORD) == 201
        assert await put_from("127.0.0.1", a.url, "88.118.8/real-a", ENT_PASSWORD) == 201
        assert await put_from("127.0.0.2", a.url, "88.118.8/late-a", ENT_PASSWORD) == 401
    import redis as redis_py
    from registry.redis_keys import failure_bucket
    counts = redis_py.Redis(port=redis_server.port).hget(failure_bucket("127.0.0.2"), "127.0.0.2")
    assert counts is not None and counts.split(b":")[0] == b"3"      # refusals while locked out are not counted
    assert redis_py.Redis(port=redis_server.port).hget(failure_bucket("127.0.0.1"), "127.0.0.1") is None


async def test_redis_stopped_and_restarted_under_read_load(tmp_path, redis_server):
    """Cached identifiers keep being answered while Redis is down, writes fail
    with 503 and responseCode 3, and everything comes back without a restart."""
    home, _ = shared_homes(tmp_path, redis_server.url)
    env = {"IDNODE_STORE": redis_server.url, "IDNODE_STORE_WRITE_DEADLINE": "2", "IDNODE_STORE_TIMEOUT": "0.5"}
    handles = [f"88.118.8/cached-{i}" for i in range(20)]
    with serving_workers(home, 1, env) as node:
        async with aiohttp.ClientSession() as session:
            for i, h in enumerate(handles):
                assert (await put(session, node.url, h, value(i, 0))).status == 201
                assert await resolved(session, node.url, h) == value(i, 0)          # now cached
            reads = failures = 0
            stop = asyncio.Event()

            async def read_load() -> None:
                nonlocal reads, failures
                while not stop.is_set():
                    got = await asyncio.gather(*(resolved(session, node.url, h) for h in handles))
                    reads += len(got)
                    failures += sum(1 for i, g in enumerate(got) if g != value(i, 0))

            loader = asyncio.create_task(read_load())
            await asyncio.sleep(0.2)
            redis_server.stop()
            r = await put(session, node.url, "88.118.8/during", "https://acme.example/during")
            body = await r.json()
            assert r.status == 503 and body["responseCode"] == 3, body
            async with session.get(f"{node.url}/api/handles/88.118.8/uncached") as r:      # a miss: the store is away
                assert r.status == 503 and (await r.json())["responseCode"] == 3
            for transport in ("udp", "tcp"):        # the Handle protocol: the same answers
                async with HandleClient("127.0.0.1", node.hs_port, transport=transport, timeout=10.0) as hs:
                    assert (await hs.resolve(handles[1])).values[0].data == value(1, 0).encode()
                    with pytest.raises(HandleResponseError) as busy:
                        await hs.resolve("88.118.8/uncached")
                    assert busy.value.code == RC.SERVER_BUSY
            async with session.get(f"{node.url}/readyz") as r:
                assert r.status == 503 and (await r.json())["status"] == "unavailable"
            async with session.get(f"{node.url}/metrics") as r:                      # operators still see it
                text = await r.text()
                assert r.status == 200 and "idnode_cache" in text and "idnode_registry_reads_waiting" in text
            during = reads
            await asyncio.sleep(0.5)
            assert reads > during                    # the load went on through the outage
            redis_server.start()                     # same port, same append-only file
            deadline = time.monotonic() + DEADLINE
            while (await put(session, node.url, "88.118.8/after", "https://acme.example/after")).status not in (200, 201):
                assert time.monotonic() < deadline, "writes never recovered"
                await asyncio.sleep(0.1)
            stop.set()
            await loader
            async with session.get(f"{node.url}/readyz") as r:
                assert r.status == 200 and (await r.json())["status"] == "ready"
            assert reads > 0 and failures == 0
            assert await resolved(session, node.url, "88.118.8/after") == "https://acme.example/after"
            assert await resolved(session, node.url, "88.118.8/during") is None       # refused, so not written
            assert await resolved(session, node.url, handles[0]) == value(0, 0)


@pytest.fixture
def cluster(tmp_path):
    c = redis_servers.start_cluster(tmp_path / "cluster")
    yield c
    c.stop()


async def test_kill_a_cluster_master_while_two_instances_register(tmp_path, cluster):
    """kill -9 of a master mid-way through 20,000 registrations over two
    instances: every identifier whose registration was acknowledged is there
    after the failover."""
    a_home, b_home = shared_homes(tmp_path, cluster.url)
    env = {"IDNODE_STORE": cluster.url, "IDNODE_STORE_WRITE_DEADLINE": "2"}
    acked: list[str] = []
    refused: list[tuple[int, int]] = []
    batches = [[f"88.118.8/fo-{n:05d}" for n in range(start, start + 100)] for start in range(0, 20_000, 100)]
    victim = next(s for s in cluster.masters() if s.port != cluster.nodes[0].port)
    with serving_workers(a_home, 1, env) as a, serving_workers(b_home, 1, env) as b:
        async with aiohttp.ClientSession() as session:
            async def register(url: str, batch: list[str]) -> None:
                items = [{"handle": h, "values": [{"index": 1, "type": "URL", "data": f"https://acme.example/{h}"}]}
                         for h in batch]
                async with session.post(f"{url}/api/batch/register", json={"items": items}, headers=ADMIN) as r:
                    if r.status == 200:
                        body = await r.json()
                        acked.extend(x["handle"] for x in body["results"] if x["responseCode"] == 1)
                    else:
                        refused.append((r.status, (await r.json())["responseCode"]))

            back = False
            for n, batch in enumerate(batches):
                if n == len(batches) // 3:
                    victim.kill()                    # kill -9, mid-way
                elif n > len(batches) // 3 and not back and len(cluster.masters()) == 3:
                    victim.start()                   # failed over: it comes back, as its successor's replica
                    back = True
                await register((a, b)[n % 2].url, batch)
            deadline = time.monotonic() + DEADLINE
            while not back:                          # the registrations outran the failover: wait for it
                assert time.monotonic() < deadline, "no failover"
                if len(cluster.masters()) == 3:
                    victim.start()
                    back = True
                await asyncio.sleep(0.2)
            for n in range(20):                      # and write on after it
                await register((a, b)[n % 2].url, [f"88.118.8/after-{n:02d}-{i:03d}" for i in range(100)])
    errors = a.events("unhandled error") + b.events("unhandled error")
    assert not errors, errors[0].get("exc", errors[0])[-1500:]
    assert set(refused) <= {(503, 3)}, refused             # a batch the store could not take at all
    assert len(acked) > 0
    import redis as redis_py
    from registry.redis_keys import row
    rc = redis_py.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    pipe = rc.pipeline(transaction=False)
    for h in acked:
        pipe.exists(row(h.lower()))
    missing = [h for h, found in zip(acked, pipe.execute()) if not found]
    assert missing == [], f"{len(missing)} of {len(acked)} acknowledged identifiers lost"
    assert len(set(acked)) == len(acked)
