"""Authentication: lock-out after repeated failures, disabled prefixes, metrics."""

from __future__ import annotations

import aiohttp
import pytest

from resolver.server import serving
from resolver.settings import load_settings
from tests.conftest import ENT_PASSWORD, basic, provision_node

URL = {"values": [{"index": 1, "type": "URL", "data": "https://acme.example/"}]}


@pytest.fixture
async def strict_node(tmp_path):
    settings = load_settings(env={}, overrides={"node.home": str(tmp_path / "home"), "http.port": 0, "handle.port": 0,
                                                 "auth.failure_delay": 0.0, "auth.lockout_failures": 3})
    await provision_node(settings)
    async with serving(settings) as running, aiohttp.ClientSession() as session:
        yield running.url, session


async def test_lockout_after_repeated_failures_even_with_the_right_secret(strict_node):
    url, session = strict_node
    wrong = basic("300:88.118.8/ADMIN", "wrong-secret")
    for _ in range(3):
        r = await session.put(f"{url}/api/handles/88.118.8/a", json=URL, headers=wrong)
        assert r.status == 401 and (await r.json())["message"] == "authentication failed"
    r = await session.put(f"{url}/api/handles/88.118.8/a", json=URL, headers=basic("300:88.118.8/ADMIN", ENT_PASSWORD))
    body = await r.json()
    assert r.status == 401 and body["responseCode"] == 403 and "too many failed authentications" in body["message"]
    text = await (await session.get(f"{url}/metrics")).text()
    assert 'idnode_auth_failures_total{protocol="rest"} 4.0' in text


async def test_unknown_identity_and_malformed_user(strict_node):
    url, session = strict_node
    r = await session.put(f"{url}/api/handles/88.118.8/a", json=URL, headers=basic("300:88.118.8/NOBODY", "x" * 20))
    assert r.status == 401 and (await r.json())["responseCode"] == 403
    r = await session.put(f"{url}/api/handles/88.118.8/a", json=URL, headers=basic("admin", "x" * 20))
    assert r.status == 401 and (await r.json())["responseCode"] == 404


async def test_disabled_prefix_admin_cannot_authenticate(live):
    r = await live.session.put(f"{live.url}/api/handles/88.118.8/before", json=URL, headers=live.ent_admin)
    assert r.status == 201
    await live.session.post(f"{live.url}/api/prefixes/88.118.8/disable", headers=live.node_admin)
    r = await live.session.put(f"{live.url}/api/handles/88.118.8/after", json=URL, headers=live.ent_admin)
    assert r.status == 401 and "disabled" in (await r.json())["message"]
    # what was registered is not served while the prefix is disabled, and is again once it is enabled
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/before")
    assert r.status == 404 and "88.118.8 is disabled" in (await r.json())["message"]
    await live.session.post(f"{live.url}/api/prefixes/88.118.8/enable", headers=live.node_admin)
    assert (await live.session.get(f"{live.url}/api/handles/88.118.8/before")).status == 200
