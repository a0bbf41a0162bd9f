"""Fixtures of the registry tests: every store test runs against each backend,
a real SQLite file in tmp_path, a single Redis and a 3-master, 3-replica
Redis Cluster, both started by the tests on free loopback ports
(tests/redis_servers.py) and emptied between tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from protocol.values import ADMIN_ONLY_PERMS, HandleValue
from registry.model import AdminIdentity, PrefixInfo
from registry.rules import Registry
from registry.secrets import NodeKey, hash_password
from registry.redis_backend import RedisBackend
from registry.redis_keys import RedisOptions, row as row_key
from registry.sqlite import SQLiteBackend
from bench import redisproc as redis_servers

BACKENDS = ("sqlite", "redis", "cluster")

NODE_SECRET = "node-admin-secret-0001"
ENT_SECRET = "enterprise-secret-0001"


def seckey(secret: str | bytes, index: int = 300) -> HandleValue:
    data = secret.encode() if isinstance(secret, str) else secret
    return HandleValue(index, "HS_SECKEY", data, permissions=int(ADMIN_ONLY_PERMS))


def url(index: int, text: str) -> HandleValue:
    return HandleValue(index, "URL", text.encode())


@pytest.fixture(scope="session")
def hashes() -> dict[str, str]:
    """scrypt is slow on purpose: hash the fixture secrets once."""
    return {s: hash_password(s) for s in (NODE_SECRET, ENT_SECRET)}


@pytest.fixture
def node_key() -> NodeKey:
    return NodeKey.generate()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "registry.sqlite3"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = redis_servers.Server(redis_servers.free_port(), tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    cluster = redis_servers.start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


class Place:
    """Where one test's store lives, and how the test looks behind the backend."""

    def __init__(self, kind: str, db_path: Path, server=None) -> None:
        self.kind = kind
        self.db_path = db_path
        self.server = server                 # a redis_servers.Server or Cluster

    def backend(self, **kw):
        """A new backend on the same store (another process's, as far as the store can tell)."""
        if self.kind == "sqlite":
            return SQLiteBackend(self.db_path, **kw)
        return RedisBackend(self.server.url, RedisOptions(replicas=1 if self.kind == "cluster" else 0, **kw))

    def _redis(self):
        if self.kind == "cluster":
            import redis
            return redis.RedisCluster(host="127.0.0.1", port=self.server.nodes[0].port)
        return self.server.client()

    def raw_row(self, key: str) -> tuple[str, str, bytes] | None:
        """(handle, prefix key, stored values) as the backend keeps them."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.db_path) as conn:
                return conn.execute("SELECT handle, prefix_key, vals FROM handles WHERE key = ?", (key,)).fetchone()
        h, p, b = self._redis().hmget(row_key(key), "h", "p", "b")
        return None if h is None else (h.decode(), p.decode(), b)

    def raw_ready(self, key: str) -> bytes | None:
        """The reply-ready public values as the backend keeps them."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.db_path) as conn:
                return conn.execute("SELECT ready FROM handles WHERE key = ?", (key,)).fetchone()[0]
        return self._redis().hget(row_key(key), "r")

    def set_raw_blob(self, key: str, blob: bytes) -> None:
        """Overwrite the stored values behind the backend's back (keeping the rest)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.db_path) as conn:
                conn.execute("UPDATE handles SET vals = ? WHERE key = ?", (blob, key))
            return
        from registry.redis_tx import crc
        r = self._redis()
        h, ready = r.hmget(row_key(key), "h", "r")
        r.hset(row_key(key), mapping={"b": blob, "c": crc(h, blob, ready)})

    def raw_count(self) -> int:
        """Identifiers stored."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.db_path) as conn:
                return conn.execute("SELECT count(*) FROM handles").fetchone()[0]
        return sum(1 for _ in self._scan(":h:"))

    def _scan(self, part: str):
        r = self._redis()
        for key in r.scan_iter(match=f"idn:*{part}*", count=1000):    # the test's own server: a whole SCAN is fine
            yield r, key

    def stored_bytes(self) -> list[bytes]:
        """Everything the store keeps where an operator could read it: files, or keys and append-only files."""
        if self.kind == "sqlite":
            paths = [self.db_path.with_name(self.db_path.name + s) for s in ("", "-wal", "-shm")]
            return [p.read_bytes() for p in paths if p.exists()]
        out = []
        for r, key in self._scan(""):
            out.append(r.dump(key) or b"")
        servers = self.server.nodes if self.kind == "cluster" else [self.server]
        for s in servers:
            out += [p.read_bytes() for p in s.dir.rglob("*.aof")]
        return out


@pytest.fixture(params=BACKENDS)
def place(request, db_path) -> Place:
    kind = request.param
    if kind == "sqlite":
        return Place(kind, db_path)
    server = request.getfixturevalue("redis_server" if kind == "redis" else "redis_cluster")
    server.flush()
    return Place(kind, db_path, server)


@pytest.fixture
async def bare(place, node_key):
    """An open store with nothing in it."""
    store = Registry(place.backend(), node_key)
    await store.open()
    yield store
    await store.close()


async def add_prefix(store: Registry, prefix: str, hashes: dict[str, str]) -> AdminIdentity:
    admin = AdminIdentity(f"{prefix}/ADMIN", 300, prefix, hashes[ENT_SECRET])
    await store.create_prefix(PrefixInfo(prefix, f"owner of {prefix}"), admin, [seckey(ENT_SECRET)],
                              actor="test")
    return admin


@pytest.fixture
async def store(bare, hashes):
    """An initialised node (88.118) with the enterprise prefix 88.118.8."""
    node_admin = AdminIdentity("0.NA/88.118", 300, None, hashes[NODE_SECRET])
    await bare.initialise("88.118", node_admin, [seckey(NODE_SECRET)], actor="test")
    await add_prefix(bare, "88.118.8", hashes)
    return bare
