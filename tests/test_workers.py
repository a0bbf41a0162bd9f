"""A node of several workers behaves as one: a client reads its own
acknowledged writes whichever worker answers, and failed logins lock out the
failing source (never the identity) across every worker and protocol.

Real processes (`idnode serve --workers 2`), real sockets; every read is on
a new connection (a new source port), so the kernel spreads them over the
workers (SO_REUSEPORT).
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote

import aiohttp
import pytest

from protocol.codes import RC
from protocol.values import HandleValue
from resolver.hs.client import HandleClient, HandleResponseError, SecretKeyAuth
from tests.processes import serving_workers

ENT_PASSWORD = "enterprise-secret-0001"
PAIRS = 1000


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{quote(user)}:{password}".encode()).decode()}


ENT = basic("300:88.118.8/ADMIN", ENT_PASSWORD)


@pytest.fixture
def node(tmp_path):
    from tests.cli.conftest import Idnode
    idnode = Idnode(tmp_path / "home")
    idnode.ok("init")
    idnode.ok("prefix", "create", "88.118.8", "--owner", "Acme", "--password-stdin", input=ENT_PASSWORD + "\n")
    return idnode


async def fresh_get(url: str, handle: str) -> tuple[int, str | None]:
    """GET on a connection of its own: (HTTP status, the URL value or None)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        async with session.get(f"{url}/api/handles/{handle}") as r:
            doc = await r.json()
    urls = [v["data"]["value"] for v in doc.get("values", []) if v["type"] == "URL"]
    return r.status, urls[0] if urls else None


async def fresh_resolve(hs_port: int, transport: str, handle: str) -> tuple[int, str | None]:
    """A Handle resolution on a socket of its own: (response code, the URL value or None)."""
    async with HandleClient("127.0.0.1", hs_port, transport=transport, timeout=10.0) as client:
        try:
            body = await client.resolve(handle)
        except HandleResponseError as exc:
            return exc.code, None
    urls = [v.data.decode() for v in body.values if v.type == "URL"]
    return RC.SUCCESS, urls[0] if urls else None


async def test_every_read_sees_the_acknowledged_write(node):
    """1,000 register-then-read and 1,000 modify-then-read pairs through one
    worker's connection, each read on a new connection over REST, Handle UDP or
    Handle TCP. Before each write the identifier is read, so that workers hold
    it in their caches (not found, then the old value): a read that answered
    from such an entry would be stale."""
    with serving_workers(node.home, 2, env={"IDNODE_CACHE_NEGATIVE_TTL": "3600"}) as served:
        url, hs_port = served.url, served.hs_port
        readers = (
            lambda h: fresh_get(url, h),
            lambda h: fresh_resolve(hs_port, "udp", h),
            lambda h: fresh_resolve(hs_port, "tcp", h),
        )
        stale = []
        async with aiohttp.ClientSession() as writer:          # one keep-alive connection: one worker writes
            for i in range(PAIRS):
                handle = f"88.118.8/ryw-{i}"
                read = readers[i % 3]
                before = [await read(handle) for _ in range(2)]
                assert all(code in (404, RC.HANDLE_NOT_FOUND) for code, _ in before), before
                v1, v2 = f"https://acme.example/{i}/v1", f"https://acme.example/{i}/v2"
                async with writer.put(f"{url}/api/handles/{handle}", headers=ENT, params={"overwrite": "false"},
                                      json={"values": [{"index": 1, "type": "URL", "data": v1}]}) as r:
                    assert r.status == 201, await r.text()
                got = await read(handle)
                if got[1] != v1:
                    stale.append(("register", i, got))
                await read(handle)                              # cached now, in one worker or both
                async with writer.put(f"{url}/api/handles/{handle}", headers=ENT, params={"index": "1"},
                                      json={"values": [{"index": 1, "type": "URL", "data": v2}]}) as r:
                    assert r.status == 200, await r.text()
                got = await read(handle)
                if got[1] != v2:
                    stale.append(("modify", i, got))
        assert stale == []


async def test_failed_logins_lock_out_the_source_not_the_identity(node):
    """Wrong secrets for the prefix admin from 127.0.0.2, over REST and the
    Handle protocol, on new connections (so both workers see them): that source
    is locked out on every worker and protocol, even with the right secret;
    the real admin, on 127.0.0.1, keeps writing over both."""
    env = {"IDNODE_AUTH_LOCKOUT_FAILURES": "4", "IDNODE_AUTH_FAILURE_DELAY": "0"}
    url_value = {"values": [{"index": 1, "type": "URL", "data": "https://acme.example/x"}]}
    with serving_workers(node.home, 2, env=env) as served:
        url, hs_port = served.url, served.hs_port
        async def rest_put(source: str, handle: str, password: str) -> tuple[int, int]:
            connector = aiohttp.TCPConnector(force_close=True, local_addr=(source, 0))
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.put(f"{url}/api/handles/{handle}", json=url_value,
                                       headers=basic("300:88.118.8/ADMIN", password)) as r:
                    return r.status, (await r.json())["responseCode"]

        async def hs_create(source: str, handle: str, password: str) -> int:
            auth = SecretKeyAuth("88.118.8/ADMIN", 300, password.encode())
            async with HandleClient("127.0.0.1", hs_port, local_host=source, timeout=10.0) as client:
                try:
                    await client.create_handle(handle, [HandleValue(1, "URL", b"https://acme.example/y")], auth)
                except HandleResponseError as exc:
                    return exc.code
            return RC.SUCCESS

        # Two wrong guesses over each protocol, from the attacker's address.
        assert [await rest_put("127.0.0.2", f"88.118.8/guess-{i}", "wrong-guess") for i in range(2)] == \
            [(401, RC.AUTHENTICATION_FAILED)] * 2
        assert [await hs_create("127.0.0.2", f"88.118.8/guess-hs-{i}", "wrong-guess") for i in range(2)] == \
            [RC.AUTHENTICATION_FAILED] * 2
        # Four failures in all, over two protocols and two workers: the source is locked out, even with the
        # right secret, wherever it asks.
        for i in range(6):
            assert await rest_put("127.0.0.2", f"88.118.8/late-{i}", ENT_PASSWORD) == (401, RC.AUTHENTICATION_FAILED)
            assert await hs_create("127.0.0.2", f"88.118.8/late-hs-{i}", ENT_PASSWORD) == RC.AUTHENTICATION_FAILED
        # The real admin, from another address, is never locked out by them.
        for i in range(6):
            assert await rest_put("127.0.0.1", f"88.118.8/real-{i}", ENT_PASSWORD) == (201, RC.SUCCESS)
            assert await hs_create("127.0.0.1", f"88.118.8/real-hs-{i}", ENT_PASSWORD) == RC.SUCCESS
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/metrics") as r:
                text = await r.text()
        failures = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("idnode_auth_failures_total{"))
        assert failures == 4 + 12                            # the guesses, then every refusal while locked out
    for i in range(6):
        assert (await asyncio.to_thread(node.ok, "resolve", f"88.118.8/real-{i}")).stdout.startswith("1 URL ")
        assert (await asyncio.to_thread(node, "resolve", f"88.118.8/late-{i}")).exit_code == 1
