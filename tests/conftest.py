"""Shared fixtures: a real node on 127.0.0.1 port 0 over a store in tmp_path."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import pytest

from registry import open_store, provision
from resolver.server import serving
from resolver.settings import load_settings

NODE_PASSWORD = "node-admin-secret-0001"
ENT_PASSWORD = "enterprise-secret-0001"
OTHER_PASSWORD = "other-enterprise-secret-02"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{quote(user)}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class LiveNode:
    url: str
    running: object
    session: aiohttp.ClientSession
    node_admin: dict
    ent_admin: dict
    other_admin: dict

    @property
    def store(self):
        return self.running.store


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={}, overrides={"node.home": str(tmp_path / "home"), "http.port": 0, "handle.port": 0,
                                             "auth.failure_delay": 0.0})


def store_of(settings, *, create: bool = True):
    """The store of a node's settings, as the node opens it."""
    return open_store(settings.store.url, home=settings.home, create=create, limits=settings.registry.limits())


async def provision_node(settings) -> None:
    store = store_of(settings)
    await store.open()
    try:
        await provision.init_node(store, "88.118", NODE_PASSWORD)
        await provision.create_prefix(store, "88.118.8", "Acme Manufacturing", credit_code="91440101MA59ABCDEF",
                                      contact="ops@acme.example", password=ENT_PASSWORD, actor="test")
        await provision.create_prefix(store, "88.118.9", "Other Co", password=OTHER_PASSWORD, actor="test")
    finally:
        await store.close()


@pytest.fixture
async def live(settings):
    await provision_node(settings)
    async with serving(settings) as running:
        async with aiohttp.ClientSession() as session:
            yield LiveNode(running.url, running, session,
                           basic("300:0.NA/88.118", NODE_PASSWORD),
                           basic("300:88.118.8/ADMIN", ENT_PASSWORD),
                           basic("300:88.118.9/ADMIN", OTHER_PASSWORD))
