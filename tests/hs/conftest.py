"""A live node serving the Handle protocol on 127.0.0.1 (TCP, UDP, HTTP) with a stepped clock."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import aiohttp
import pytest

from protocol.values import HandleValue
from protocol.valuetypes import AdminRef
from resolver.hs.client import HandleClient, SecretKeyAuth
from resolver.server import serving
from resolver.settings import load_settings
from tests.conftest import ENT_PASSWORD, NODE_PASSWORD, OTHER_PASSWORD, basic, provision_node

# The captured requests expire near 2026-11-28; the node's clock never reads the real time here.
NOW = 1_790_000_000
PRODUCT = "88.118.8/product-123"
PRODUCT_VALUES = (
    HandleValue(1, "URL", b"https://acme.example/p/123", permissions=0x0E),
    HandleValue(2, "EMAIL", b"ops@acme.example", permissions=0x0C),             # admin read only
    HandleValue(3, "DESC", b"\xe4\xba\xa7\xe5\x93\x81 123", ttl=3600, permissions=0x0E),
    HandleValue(100, "HS_ADMIN", AdminRef("88.118.8/ADMIN", 300).encode(), permissions=0x0E),
)
PUBLIC = [(1, "URL"), (3, "DESC"), (100, "HS_ADMIN")]

ENT = SecretKeyAuth("88.118.8/ADMIN", 300, ENT_PASSWORD.encode())
OTHER = SecretKeyAuth("88.118.9/ADMIN", 300, OTHER_PASSWORD.encode())
NODE_ADMIN = SecretKeyAuth("0.NA/88.118", 300, NODE_PASSWORD.encode())


class Clock:
    """Unix seconds that move only when a test says so."""

    def __init__(self, now: float = NOW):
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class HsNode:
    running: object
    clock: Clock
    session: aiohttp.ClientSession
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.running.hs_port

    @property
    def http_port(self) -> int:
        return self.running.http_port

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def store(self):
        return self.running.store

    @property
    def service(self):
        return self.running.hs

    def client(self, transport: str = "tcp", **kw) -> HandleClient:
        port = self.http_port if transport == "http" else self.port
        return HandleClient(self.host, port, transport=transport, clock=self.clock, timeout=10.0, **kw)

    async def rest(self, handle: str, headers=None) -> tuple[int, dict]:
        async with self.session.get(f"{self.url}/api/handles/{handle}", headers=headers) as r:
            return r.status, await r.json()

    async def metric(self, name: str, **labels: str) -> float:
        async with self.session.get(f"{self.url}/metrics") as r:
            text = await r.text()
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@contextlib.asynccontextmanager
async def hs_node(tmp_path, clock: Clock | None = None, **overrides):
    settings = load_settings(env={}, overrides={
        "node.home": str(tmp_path / "home"), "http.port": 0, "handle.port": 0, "handle.idle_timeout": 0.5,
        "auth.failure_delay": 0.0, **overrides})
    await provision_node(settings)
    clock = clock or Clock()
    async with serving(settings, clock=clock) as running, aiohttp.ClientSession() as session:
        await running.store.put_handle(PRODUCT, PRODUCT_VALUES, mode="create", actor="test")
        yield HsNode(running, clock, session)


@pytest.fixture
async def hs(tmp_path):
    async with hs_node(tmp_path) as node:
        yield node


__all__ = ["NOW", "PRODUCT", "PRODUCT_VALUES", "PUBLIC", "ENT", "OTHER", "NODE_ADMIN", "Clock", "HsNode",
           "hs_node", "basic", "ENT_PASSWORD"]
