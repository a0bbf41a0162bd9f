"""No 500 from input: every bad body, encoding or parameter gets the API's error
shape (400, 413 or 415), and the node logs no traceback for it."""

from __future__ import annotations

import gzip
import zlib

import cbor2
import orjson
import pytest

from resolver.settings import load_settings

from .conftest import exchange, status_of

LIMIT = 64 * 1024
VALUES = {"values": [{"index": 1, "type": "URL", "data": "https://acme.example/p"}]}


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={}, overrides={"node.home": str(tmp_path / "home"), "http.port": 0, "handle.port": 0,
                                             "auth.failure_delay": 0.0, "http.max_body_bytes": LIMIT})


async def refused(live, method, path, status, *, data=None, headers=None, code=2, **params):
    async with live.session.request(method, live.url + path, data=data, headers=headers, params=params) as r:
        body = await r.json()
        assert r.status == status, body
        assert set(body) == {"responseCode", "handle", "message"} and body["responseCode"] == code
        return body["message"]


def deep(levels: int, *, objects: bool = False) -> bytes:
    if objects:
        return b'{"a":' * levels + b"1" + b"}" * levels
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("page, size", [("9" * 400, "10"), ("99999999999999999999", "10"), ("-1", "10"),
                                        ("100001", "1"), ("x", "10"), ("0", "0"), ("0", "1001"), ("0", "1e3")])
async def test_paging_out_of_range(live, node_log, page, size):
    message = await refused(live, "GET", "/api/handles", 400, headers=live.ent_admin,
                            prefix="88.118.8", page=page, pageSize=size)
    assert message in ("page must be an integer in 0..100000", "pageSize must be an integer in 1..1000")
    assert not node_log.bad()


async def test_index_out_of_range(live, node_log):
    for index in ("4294967296", "-1", "9" * 5000, "one"):
        message = await refused(live, "GET", "/api/handles/88.118.8/x", 400, index=index)
        assert message == "index must be an integer in 0..4294967295"
    assert not node_log.bad()


@pytest.mark.parametrize("body, says", [(deep(1000), "JSON body nested too deep: at most 32 levels"),
                                        (deep(1000, objects=True), "JSON body nested too deep: at most 32 levels"),
                                        (deep(33), "JSON body nested too deep: at most 32 levels"),
                                        (deep(5000), "malformed JSON body: ")])       # orjson stops at 1024 itself
async def test_json_nested_too_deep(live, node_log, body, says):
    for path, auth in [("/api/batch/resolve", {}), ("/api/batch/register", live.ent_admin),
                       ("/api/handles/88.118.8/deep", live.ent_admin), ("/api/prefixes/88.118.77", live.node_admin)]:
        message = await refused(live, "PUT" if "batch" not in path else "POST", path, 400, data=body,
                                headers={"Content-Type": "application/json", **auth})
        assert message.startswith(says)
    assert not node_log.bad()


async def test_json_at_the_depth_limit_is_read(live):
    body = b'{"handles": ' + b"[" * 31 + b"]" * 31 + b"}"         # 32 levels: read, then refused as a batch
    r = await live.session.post(f"{live.url}/api/batch/resolve", data=body, headers={"Content-Type": "application/json"})
    assert r.status == 200 and (await r.json())["results"][0]["responseCode"] == 102


@pytest.mark.parametrize("body, says", [
    (b"\x81" * 1000 + b"\x01", "nesting depth (32)"),
    (bytes.fromhex("d81c81d81d00"), "shared or cyclic"),                      # a list holding itself
    (cbor2.dumps({"handles": [b"88.118.8/x"]}), "holds a bytes"),
    (cbor2.dumps({"handles": {1, 2}}), "holds a set"),
    (cbor2.dumps({1: ["88.118.8/x"]}), "key that is not text"),
    (cbor2.dumps({"handles": [1 << 70]}), "beyond 64 bits"),
    (cbor2.dumps({"handles": [float("nan")]}), "not finite"),
    (cbor2.dumps({"handles": [cbor2.CBORTag(4000, "x")]}), "holds a CBORTag"),
])
async def test_cbor_outside_the_json_model(live, node_log, body, says):
    message = await refused(live, "POST", "/api/batch/resolve", 400, data=body,
                            headers={"Content-Type": "application/cbor"})
    assert says in message
    assert not node_log.bad()


@pytest.mark.parametrize("encoding, body", [("gzip", b"not gzip at all"), ("gzip", gzip.compress(b'{"handles": []}')),
                                            ("deflate", zlib.compress(b"{}")), ("x-junk", b"{}"), ("identity, gzip", b"{}")])
async def test_content_encoding_is_refused(live, node_log, encoding, body):
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    for method, path, auth in [("PUT", "/api/handles/88.118.8/gz", live.ent_admin),
                               ("POST", "/api/batch/resolve", {}),
                               ("POST", "/api/batch/register", live.ent_admin),
                               ("PUT", "/api/prefixes/88.118.77", live.node_admin)]:
        message = await refused(live, method, path, 415, data=body, headers={**headers, **auth})
        assert message.startswith(f"Content-Encoding {encoding!r} is not accepted")
    r = await live.session.post(f"{live.url}/88.118.8/gz", data=body,
                                headers={"Content-Type": "application/x-hdl-message", "Content-Encoding": encoding})
    assert r.status == 415
    assert not node_log.bad()


async def test_any_content_encoding_is_refused_and_the_connection_closed(live, node_log):
    """aiohttp does not decompress (auto_decompress off): ``br``, which it could
    not decode anyway, gets the API's 415 like gzip, and the connection is
    closed after it (the body is not read)."""
    reply = await exchange(live.running.http_port, b"POST /api/batch/resolve HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Encoding: br\r\nContent-Length: 4\r\n\r\njunk")
    assert status_of(reply) == 415 and reply.count(b"HTTP/1.1") == 1
    assert not node_log.bad()


async def test_bodies_over_the_limit(live, node_log):
    big = orjson.dumps({"handles": ["88.118.8/x" * 10] * (LIMIT // 100)})
    assert len(big) > LIMIT
    await refused(live, "POST", "/api/batch/resolve", 413, data=big, headers={"Content-Type": "application/json"})
    await refused(live, "PUT", "/api/handles/88.118.8/big", 413, data=big,
                  headers={"Content-Type": "application/json", **live.ent_admin})
    r = await live.session.post(f"{live.url}/88.118.8/big", data=big,
                                headers={"Content-Type": "application/x-hdl-message"})
    assert r.status == 413
    # Chunked, so the size is known only while reading.
    async def chunks():
        for _ in range(LIMIT // 1000 + 2):
            yield b" " * 1000
    await refused(live, "POST", "/api/batch/resolve", 413, data=chunks(), headers={"Content-Type": "application/json"})
    assert not node_log.bad()


async def test_wrong_types_in_valid_json(live, node_log):
    for body in ([1, 2], {"handles": [[1], {"a": None}, 1.5, True, None]}, {"handles": "88.118.8/x"}):
        r = await live.session.post(f"{live.url}/api/batch/resolve", json=body)
        assert r.status in (200, 400)
    for body in ({"values": "x"}, {"values": [{"index": "one", "type": 5, "data": []}]}, [None], "text", 7):
        await refused(live, "PUT", "/api/handles/88.118.8/typed", 400, data=orjson.dumps(body), code=202,
                      headers={"Content-Type": "application/json", **live.ent_admin})
    assert not node_log.bad()


async def test_body_cut_short_is_not_an_internal_error(live, node_log):
    """The client announces more than it sends, then closes its side (found by the fuzz test)."""
    port = live.running.http_port
    for head in (b"PUT /api/handles/88.118.8/cut HTTP/1.1\r\nContent-Type: application/json\r\n" + _auth(live),
                 b"POST /api/batch/resolve HTTP/1.1\r\n",
                 b"POST /api HTTP/1.1\r\n"):                  # the Handle protocol over HTTP
        reply = await exchange(port, head + b"Host: x\r\nContent-Length: 1000\r\n\r\n" + orjson.dumps(VALUES), eof=True)
        assert status_of(reply) in (None, 400)
    assert not node_log.bad()


def _auth(live) -> bytes:
    return b"Authorization: " + live.ent_admin["Authorization"].encode() + b"\r\n"
