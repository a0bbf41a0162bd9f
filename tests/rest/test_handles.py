"""/api/handles: the Handle.Net v9 JSON REST shapes, codes and permissions."""

from __future__ import annotations

import pytest

URL_VALUE = {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://acme.example/po/123"}}
DESC_VALUE = {"index": 2, "type": "DESC", "data": {"format": "string", "value": "purchase order"}}


async def put(live, handle, values, headers=None, **params):
    return await live.session.put(f"{live.url}/api/handles/{handle}", json={"values": values},
                                  headers=live.ent_admin if headers is None else headers, params=params)


async def test_register_resolve_case_insensitive(live):
    r = await put(live, "88.118.8/PO-2026-000123", [URL_VALUE, DESC_VALUE])
    assert r.status == 201, await r.text()
    assert await r.json() == {"responseCode": 1, "handle": "88.118.8/PO-2026-000123"}
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/po-2026-000123")
    body = await r.json()
    assert r.status == 200 and body["responseCode"] == 1
    assert body["handle"] == "88.118.8/PO-2026-000123"          # as registered
    assert [(v["index"], v["type"], v["data"]["value"]) for v in body["values"]] == [
        (1, "URL", "https://acme.example/po/123"), (2, "DESC", "purchase order")]


async def test_not_found_and_invalid(live):
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/nope")
    assert r.status == 404 and await r.json() == {"responseCode": 100, "handle": "88.118.8/nope",
                                                  "message": "handle not found"}
    r = await live.session.get(f"{live.url}/api/handles/no-slash-here")
    assert r.status == 404 or r.status == 400   # the proxy route only takes prefix/suffix
    r = await live.session.get(f"{live.url}/api/handles/" + "88.118.8/" + "x" * 300)
    body = await r.json()
    assert r.status == 400 and body["responseCode"] == 102 and "255" in body["message"]


async def test_filters_by_index_and_type(live):
    await put(live, "88.118.8/f1", [URL_VALUE, DESC_VALUE])
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/f1", params=[("type", "DESC")])
    assert [v["index"] for v in (await r.json())["values"]] == [2]
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/f1", params=[("index", "1"), ("index", "2")])
    assert [v["index"] for v in (await r.json())["values"]] == [1, 2]
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/f1", params=[("type", "EMAIL")])
    assert r.status == 200 and (await r.json())["responseCode"] == 200


async def test_overwrite_false_conflicts(live):
    assert (await put(live, "88.118.8/dup", [URL_VALUE])).status == 201
    r = await put(live, "88.118.8/dup", [DESC_VALUE], overwrite="false")
    assert r.status == 409 and (await r.json())["responseCode"] == 101
    r = await put(live, "88.118.8/dup", [DESC_VALUE])                   # default overwrite: replace
    assert r.status == 200
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/dup")
    assert [v["type"] for v in (await r.json())["values"]] == ["DESC"]


async def test_partial_update_by_index_keeps_other_values(live):
    await put(live, "88.118.8/part", [URL_VALUE, DESC_VALUE])
    new_desc = {"index": 2, "type": "DESC", "data": "changed"}
    r = await put(live, "88.118.8/part", [new_desc], index="2")
    assert r.status == 200, await r.text()
    values = (await (await live.session.get(f"{live.url}/api/handles/88.118.8/part")).json())["values"]
    assert [(v["index"], v["data"]["value"]) for v in values] == [(1, URL_VALUE["data"]["value"]), (2, "changed")]


async def test_delete_values_and_handle(live):
    await put(live, "88.118.8/del", [URL_VALUE, DESC_VALUE])
    r = await live.session.delete(f"{live.url}/api/handles/88.118.8/del", params={"index": "7"}, headers=live.ent_admin)
    assert r.status == 400 and (await r.json())["responseCode"] == 200
    r = await live.session.delete(f"{live.url}/api/handles/88.118.8/del", params={"index": "2"}, headers=live.ent_admin)
    assert r.status == 200 and (await r.json())["responseCode"] == 1
    r = await live.session.delete(f"{live.url}/api/handles/88.118.8/del", headers=live.ent_admin)
    assert r.status == 200
    r = await live.session.delete(f"{live.url}/api/handles/88.118.8/del", headers=live.ent_admin)
    assert r.status == 404 and (await r.json())["responseCode"] == 100


async def test_mint_new_suffix(live):
    r = await put(live, "88.118.8/batch-", [URL_VALUE], mintNewSuffix="true")
    body = await r.json()
    assert r.status == 201 and body["handle"].startswith("88.118.8/batch-") and len(body["handle"]) > 30
    assert (await live.session.get(f"{live.url}/api/handles/{body['handle']}")).status == 200


async def test_write_needs_credentials_and_own_prefix(live):
    r = await put(live, "88.118.8/x", [URL_VALUE], headers={})
    assert r.status == 401 and (await r.json())["responseCode"] == 402
    assert "Basic" in r.headers["WWW-Authenticate"]
    r = await put(live, "88.118.8/x", [URL_VALUE], headers=live.other_admin)
    assert r.status == 403 and (await r.json())["responseCode"] == 400
    r = await put(live, "88.118.8/x", [URL_VALUE], headers=live.node_admin)   # node admin may write anywhere
    assert r.status == 201
    from tests.conftest import basic
    r = await put(live, "88.118.8/y", [URL_VALUE], headers=basic("300:88.118.8/ADMIN", "wrong"))
    assert r.status == 401 and (await r.json())["responseCode"] == 403
    r = await put(live, "88.118.8/y", [URL_VALUE], headers={"Authorization": "Basic !!!"})
    assert r.status == 401 and (await r.json())["responseCode"] == 404
    assert (await live.session.get(f"{live.url}/api/handles/88.118.8/y")).status == 404   # nothing written


async def test_unknown_prefix_and_disabled_prefix(live):
    r = await put(live, "88.118.77/x", [URL_VALUE], headers=live.node_admin)
    body = await r.json()
    assert r.status == 404 and body["responseCode"] == 301 and body["handle"] == "88.118.77/x"
    r = await live.session.post(f"{live.url}/api/prefixes/88.118.8/disable", headers=live.node_admin)
    assert r.status == 200 and (await r.json())["state"] == "disabled"
    r = await put(live, "88.118.8/z", [URL_VALUE], headers=live.node_admin)
    assert r.status == 403


async def test_private_values_only_for_prefix_admin(live):
    secret = {"index": 3, "type": "INTERNAL", "data": "cost 42", "permissions": "1100"}
    r = await put(live, "88.118.8/priv", [URL_VALUE, secret])
    assert r.status == 201, await r.text()
    anon = (await (await live.session.get(f"{live.url}/api/handles/88.118.8/priv")).json())["values"]
    assert [v["index"] for v in anon] == [1]
    other = await live.session.get(f"{live.url}/api/handles/88.118.8/priv", headers=live.other_admin)
    assert [v["index"] for v in (await other.json())["values"]] == [1]
    own = await live.session.get(f"{live.url}/api/handles/88.118.8/priv", headers=live.ent_admin)
    assert [v["index"] for v in (await own.json())["values"]] == [1, 3]


async def test_admin_secret_never_returned(live):
    r = await live.session.get(f"{live.url}/api/handles/88.118.8/ADMIN", headers=live.ent_admin)
    body = await r.json()
    assert "HS_SECKEY" not in {v["type"] for v in body["values"]}
    assert "enterprise-secret" not in await r.text()


@pytest.mark.parametrize("body,ctype,status", [
    (b"{not json", "application/json", 400),
    (b'{"values": 5}', "application/json", 400),
    (b'{"values": [{"type": "URL"}]}', "application/json", 400),
    (b"values=1", "application/x-www-form-urlencoded", 415),
])
async def test_bad_bodies_write_nothing(live, body, ctype, status):
    r = await live.session.put(f"{live.url}/api/handles/88.118.8/bad", data=body,
                               headers={**live.ent_admin, "Content-Type": ctype})
    payload = await r.json()
    assert r.status == status and payload["handle"] == "88.118.8/bad" and payload["message"]
    assert (await live.session.get(f"{live.url}/api/handles/88.118.8/bad")).status == 404


async def test_body_too_large(live, settings):
    big = b'{"values": [' + b" " * (settings.http.max_body_bytes + 10) + b"]}"
    r = await live.session.put(f"{live.url}/api/handles/88.118.8/big", data=big,
                               headers={**live.ent_admin, "Content-Type": "application/json"})
    assert r.status == 413 and (await r.json())["responseCode"] == 2


async def test_list_handles_paged(live):
    for i in range(5):
        await put(live, f"88.118.8/item-{i}", [URL_VALUE])
    r = await live.session.get(f"{live.url}/api/handles", params={"prefix": "88.118.8", "page": "0", "pageSize": "3"},
                               headers=live.ent_admin)
    body = await r.json()
    assert r.status == 200 and len(body["handles"]) == 3
    r2 = await live.session.get(f"{live.url}/api/handles", params={"prefix": "88.118.8", "page": "1", "pageSize": "3"},
                                headers=live.ent_admin)
    rest = (await r2.json())["handles"]
    assert set(body["handles"]) | set(rest) >= {f"88.118.8/item-{i}" for i in range(5)}
    r = await live.session.get(f"{live.url}/api/handles", params={"prefix": "88.118.8"}, headers=live.other_admin)
    assert r.status == 403


async def test_cached_answers_match_the_first_answer(live):
    await put(live, "88.118.8/Hot-1", [URL_VALUE, DESC_VALUE])
    bodies = []
    for spelling in ("88.118.8/Hot-1", "88.118.8/Hot-1", "88.118.8/HOT-1"):
        r = await live.session.get(f"{live.url}/api/handles/{spelling}")
        assert r.status == 200
        bodies.append(await r.read())
    assert bodies[0] == bodies[1] == bodies[2]
    for _ in range(2):                                  # not found: first from the registry, then the cache
        r = await live.session.get(f"{live.url}/api/handles/88.118.8/cold-miss")
        assert r.status == 404 and await r.json() == {"responseCode": 100, "handle": "88.118.8/cold-miss",
                                                      "message": "handle not found"}
    await put(live, "88.118.8/cold-miss", [URL_VALUE])   # the write drops the negative entry at once
    assert (await live.session.get(f"{live.url}/api/handles/88.118.8/cold-miss")).status == 200
