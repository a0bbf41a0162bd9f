"""Fixtures for the embedded store tests: a real SQLite file in tmp_path."""

from __future__ import annotations

import pytest

from protocol.values import ADMIN_ONLY_PERMS, HandleValue
from registry.model import AdminIdentity, PrefixInfo
from registry.rules import Registry
from registry.secrets import NodeKey, hash_password
from registry.sqlite import SQLiteBackend

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


@pytest.fixture
async def bare(db_path, node_key):
    """An open store with nothing in it."""
    store = Registry(SQLiteBackend(db_path), node_key)
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
