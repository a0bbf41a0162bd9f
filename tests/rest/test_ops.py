"""Proxy redirects, health, readiness and Prometheus metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


async def test_proxy_redirects_to_first_url(live):
    await live.session.put(f"{live.url}/api/handles/88.118.8/scan-me", headers=live.ent_admin,
                           json={"values": [{"index": 2, "type": "DESC", "data": "x"},
                                            {"index": 5, "type": "URL", "data": "https://acme.example/p/1"}]})
    r = await live.session.get(f"{live.url}/88.118.8/scan-me", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "https://acme.example/p/1"
    r = await live.session.get(f"{live.url}/88.118.8/missing", allow_redirects=False)
    assert r.status == 404 and "handle not found" in await r.text()
    await live.session.put(f"{live.url}/api/handles/88.118.8/no-url", headers=live.ent_admin,
                           json={"values": [{"index": 2, "type": "DESC", "data": "x"}]})
    r = await live.session.get(f"{live.url}/88.118.8/no-url", allow_redirects=False)
    assert r.status == 404 and "no public http(s) URL" in await r.text()
    # Only absolute http(s) URLs are redirected to: a script or a relative target never is.
    await live.session.put(f"{live.url}/api/handles/88.118.8/tricky", headers=live.ent_admin,
                           json={"values": [{"index": 1, "type": "URL", "data": "javascript:alert(1)"},
                                            {"index": 2, "type": "URL", "data": "/relative"},
                                            {"index": 3, "type": "URL.mirror", "data": "https://m.example/"}]})
    r = await live.session.get(f"{live.url}/88.118.8/tricky", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "https://m.example/"


async def test_health_and_ready(live):
    r = await live.session.get(f"{live.url}/healthz")
    assert r.status == 200 and (await r.json())["status"] == "ok"
    r = await live.session.get(f"{live.url}/readyz")
    assert r.status == 200 and (await r.json())["prefix"] == "88.118"


async def test_metrics_count_requests_and_registry_sizes(live):
    await live.session.get(f"{live.url}/api/handles/88.118.8/missing")
    await live.session.get(f"{live.url}/api/handles/88.118.8/ADMIN")
    text = await (await live.session.get(f"{live.url}/metrics")).text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.labels.get("operation"), s.labels.get("result")): s.value
               for s in fams["idnode_requests"].samples if s.name == "idnode_requests_total"}
    assert samples[("get_handle", "handle_not_found")] == 1
    assert samples[("get_handle", "success")] == 1
    assert fams["idnode_registry_prefixes"].samples[0].value == 2
    # the node admin handle and the two enterprise admin handles
    assert fams["idnode_registry_identifiers"].samples[0].value >= 2
    assert "idnode_request_duration_seconds" in fams
    assert fams["idnode_build_info"].samples[0].labels["version"]


async def test_unknown_route_gets_error_shape(live):
    r = await live.session.post(f"{live.url}/api/nothing-here")
    body = await r.json()
    assert r.status in (404, 405) and body["responseCode"] in (2, 100) and "message" in body
