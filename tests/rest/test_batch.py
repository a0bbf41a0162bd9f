"""Batch resolve and register, JSON and CBOR, per-item results."""

from __future__ import annotations

import cbor2

URL = {"index": 1, "type": "URL", "data": "https://acme.example/p"}


async def register(live, items, *, overwrite=False, headers=None):
    return await live.session.post(f"{live.url}/api/batch/register", json={"overwrite": overwrite, "items": items},
                                   headers=live.ent_admin if headers is None else headers)


async def test_register_two_thousand_then_resolve(live):
    items = [{"handle": f"88.118.8/B-{i:05d}", "values": [URL]} for i in range(2000)]
    r = await register(live, items)
    body = await r.json()
    assert r.status == 200 and body["written"] == 2000
    assert all(x["responseCode"] == 1 for x in body["results"])
    r = await live.session.post(f"{live.url}/api/batch/resolve",
                                json={"handles": ["88.118.8/b-00000", "88.118.8/B-01999", "88.118.8/none", "bad"]})
    results = (await r.json())["results"]
    assert [x["responseCode"] for x in results] == [1, 1, 100, 102]
    assert results[0]["handle"] == "88.118.8/B-00000"


async def test_register_reports_exactly_what_was_written(live):
    await register(live, [{"handle": "88.118.8/exists", "values": [URL]}])
    items = [
        {"handle": "88.118.8/ok-1", "values": [URL]},
        {"handle": "88.118.8/exists", "values": [URL]},            # 101, not overwritten
        {"handle": "88.118.9/not-mine", "values": [URL]},          # 400 not an admin
        {"handle": "no-slash", "values": [URL]},                   # 102
        {"handle": "88.118.8/bad-value", "values": [{"type": "URL"}]},   # 202
        {"values": [URL]},                                          # 102 no handle
        {"handle": "88.118.8/ok-2", "values": [URL]},
    ]
    body = await (await register(live, items)).json()
    assert [x["responseCode"] for x in body["results"]] == [1, 101, 400, 102, 202, 102, 1]
    assert body["written"] == 2
    for handle, status in [("88.118.8/ok-1", 200), ("88.118.8/ok-2", 200), ("88.118.9/not-mine", 404),
                           ("88.118.8/bad-value", 404)]:
        assert (await live.session.get(f"{live.url}/api/handles/{handle}")).status == status


async def test_cbor_both_ways(live):
    payload = cbor2.dumps({"items": [{"handle": "88.118.8/cbor-1", "values": [URL]}]})
    r = await live.session.post(f"{live.url}/api/batch/register", data=payload,
                                headers={**live.ent_admin, "Content-Type": "application/cbor",
                                         "Accept": "application/cbor"})
    assert r.status == 200 and r.content_type == "application/cbor"
    assert cbor2.loads(await r.read())["written"] == 1
    r = await live.session.post(f"{live.url}/api/batch/resolve", data=cbor2.dumps({"handles": ["88.118.8/cbor-1"]}),
                                headers={"Content-Type": "application/cbor", "Accept": "application/cbor"})
    result = cbor2.loads(await r.read())["results"][0]
    assert result["responseCode"] == 1 and result["values"][0]["type"] == "URL"


async def test_malformed_batches_write_nothing(live, settings):
    cases = [
        (b"\xff\xfe", "application/cbor", 400),
        (b"[1,2", "application/json", 400),
        (b'{"items": 7}', "application/json", 400),
        (b'{"items": []}', "application/json", 400),
        (b"<xml/>", "application/xml", 415),
    ]
    for data, ctype, status in cases:
        r = await live.session.post(f"{live.url}/api/batch/register", data=data,
                                    headers={**live.ent_admin, "Content-Type": ctype})
        body = await r.json()
        assert r.status == status and body["responseCode"] == 2 and body["message"], (data, body)
    too_many = [{"handle": f"88.118.8/m-{i}", "values": [URL]} for i in range(settings.http.batch_max_items + 1)]
    r = await register(live, too_many)
    assert r.status == 413
    assert (await live.session.get(f"{live.url}/api/handles/88.118.8/m-0")).status == 404


async def test_register_needs_auth(live):
    r = await register(live, [{"handle": "88.118.8/a", "values": [URL]}], headers={})
    assert r.status == 401 and (await r.json())["responseCode"] == 402
