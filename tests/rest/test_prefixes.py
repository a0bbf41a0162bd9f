"""Prefix management over REST by the node admin."""

from __future__ import annotations

from tests.conftest import basic


async def test_node_admin_creates_prefix_whose_admin_can_write(live):
    body = {"owner": "Bay Area Parts", "creditCode": "91440101MA59ABCDE1", "password": "a-long-enough-secret"}
    r = await live.session.put(f"{live.url}/api/prefixes/88.118.20", json=body, headers=live.node_admin)
    created = await r.json()
    assert r.status == 201 and created["admin"] == "300:88.118.20/ADMIN" and created["state"] == "enabled"
    assert "a-long-enough-secret" not in await r.text()
    new_admin = basic("300:88.118.20/ADMIN", "a-long-enough-secret")
    r = await live.session.put(f"{live.url}/api/handles/88.118.20/part-1", headers=new_admin,
                               json={"values": [{"index": 1, "type": "URL", "data": "https://bay.example/1"}]})
    assert r.status == 201
    listed = await (await live.session.get(f"{live.url}/api/prefixes", headers=live.node_admin)).json()
    assert {p["prefix"] for p in listed["prefixes"]} == {"88.118.8", "88.118.9", "88.118.20"}


async def test_prefix_requests_refused(live):
    ok = {"owner": "X", "password": "a-long-enough-secret"}
    cases = [
        ("88.118.21", ok, live.ent_admin, 403),                              # not the node admin
        ("88.118.21", ok, {}, 401),                                          # no credentials
        ("88.118.21", {"owner": "X", "password": "short"}, live.node_admin, 400),
        ("88.118.21", {"password": "a-long-enough-secret"}, live.node_admin, 400),   # no owner
        ("89.1", ok, live.node_admin, 400),                                  # not under 88.118
        ("88.118.8", ok, live.node_admin, 409),                              # exists
        ("88..1", ok, live.node_admin, 400),
    ]
    for prefix, body, headers, status in cases:
        r = await live.session.put(f"{live.url}/api/prefixes/{prefix}", json=body, headers=headers)
        payload = await r.json()
        assert r.status == status and payload["message"], (prefix, body, payload)
    r = await live.session.get(f"{live.url}/api/prefixes/88.118.21", headers=live.node_admin)
    assert r.status == 404


async def test_node_admin_replaces_a_prefix_secret(live):
    url = f"{live.url}/api/prefixes/88.118.8/password"
    r = await live.session.put(url, json={"password": "a-brand-new-secret-01"}, headers=live.node_admin)
    answer = await r.json()
    assert r.status == 200 and answer["admin"] == "300:88.118.8/ADMIN" and "a-brand-new" not in await r.text()
    item = {"values": [{"index": 1, "type": "URL", "data": "https://acme.example/rotated"}]}
    r = await live.session.put(f"{live.url}/api/handles/88.118.8/rotated", json=item, headers=live.ent_admin)
    assert r.status == 401                                            # the old secret stopped working
    r = await live.session.put(f"{live.url}/api/handles/88.118.8/rotated", json=item,
                               headers=basic("300:88.118.8/ADMIN", "a-brand-new-secret-01"))
    assert r.status == 201
    for body, headers, status in [({"password": "a-brand-new-secret-02"}, live.ent_admin, 401),   # rotated away
                                  ({"password": "short"}, live.node_admin, 400),
                                  ({}, live.node_admin, 400)]:
        r = await live.session.put(url, json=body, headers=headers)
        assert r.status == status, body
    r = await live.session.put(f"{live.url}/api/prefixes/88.118.77/password", json={"password": "x" * 20},
                               headers=live.node_admin)
    assert r.status == 404
