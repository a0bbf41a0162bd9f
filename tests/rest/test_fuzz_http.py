"""Fuzz the HTTP layer of a live node: hypothesis-made methods, paths, query
strings, headers and bodies on a real socket. The rule: no status >= 500 and
no traceback or ERROR record in the node's or aiohttp's log."""

from __future__ import annotations

import base64
import gzip
from urllib.parse import quote

import cbor2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from resolver.settings import load_settings

from .conftest import exchange, status_of

LIMIT = 16 * 1024

HANDLES = st.one_of(
    st.sampled_from(["88.118.8/x", "88.118.8/ADMIN", "0.NA/88.118", "88.118.9/y", "88.118.8/", "/", "88.118.8//x",
                     "88.118.8/%zz", "88.118.8/%00", "88.118.8/%ff%fe", "88.118.8/a%2Fb", "88.118.8/..%2f..",
                     "%C3%A9/x", "88.118.8/" + "x" * 300]),
    st.text(min_size=1, max_size=40).map(lambda t: quote(t, safe="/")),
    st.from_regex(r"[0-9.]{1,12}/[\x21-\x7e]{0,20}", fullmatch=True).map(lambda t: quote(t, safe="/%")),
)
NUMBERS = st.one_of(st.integers(-2**70, 2**70).map(str), st.sampled_from(["", "x", "1e3", "0x10", " 1", "٣", "9" * 30,
                                                                          "various", "-0", "1_000"]))
PARAMS = st.lists(st.tuples(st.sampled_from(["page", "pageSize", "index", "type", "prefix", "cursor", "overwrite",
                                             "mintNewSuffix", "limit", "junk"]),
                            st.one_of(NUMBERS, st.text(max_size=20), st.sampled_from(["88.118.8", "true", "URL"]))),
                  max_size=4)
# The node's endpoints (most requests aim at one), then odd paths.
ENDPOINTS = [("GET", "/api/handles/{h}"), ("PUT", "/api/handles/{h}"), ("DELETE", "/api/handles/{h}"),
             ("GET", "/api/handles"), ("POST", "/api/batch/resolve"), ("POST", "/api/batch/register"),
             ("GET", "/api/prefixes"), ("GET", "/api/prefixes/{h}"), ("PUT", "/api/prefixes/{h}"),
             ("POST", "/api/prefixes/{h}/disable"), ("POST", "/api/prefixes/{h}/enable"), ("POST", "/{h}"),
             ("GET", "/{h}"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]
METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "FOO"])
ODD_PATHS = st.sampled_from(["/api", "/api/", "/{h}/../api/handles", "//{h}", "/api/handles/", "/api/batch",
                             "/api/prefixes/{h}/x", "/%2e%2e/{h}", "*"])


@st.composite
def targets(draw) -> tuple[str, str]:
    """A method and a path with a query string."""
    if draw(st.integers(0, 5)):
        method, path = draw(st.sampled_from(ENDPOINTS))
    else:
        method, path = draw(METHODS), draw(st.one_of(ODD_PATHS, st.sampled_from(ENDPOINTS).map(lambda e: e[1])))
    path = path.replace("{h}", draw(HANDLES))
    params = draw(PARAMS)
    if params:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='%')}" for k, v in params)
    return method, path


JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(allow_nan=False),
                                 st.text(max_size=20)),
                       lambda inner: st.one_of(st.lists(inner, max_size=4),
                                               st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=20)
VALUE = st.fixed_dictionaries({}, optional={"index": st.one_of(st.integers(-5, 2**33), st.text(max_size=4)),
                                            "type": st.one_of(st.sampled_from(["URL", "EMAIL", "HS_ADMIN", "HS_VLIST",
                                                                               "HS_SITE", "HS_PUBKEY", "HS_SECKEY"]),
                                                              JSONISH),
                                            "data": JSONISH, "ttl": JSONISH, "permissions": JSONISH})
SHAPED = st.one_of(
    st.fixed_dictionaries({"values": st.lists(VALUE, max_size=3)}),
    st.fixed_dictionaries({"handles": st.lists(st.one_of(HANDLES, JSONISH), max_size=5)}),
    st.fixed_dictionaries({"items": st.lists(st.fixed_dictionaries({"handle": HANDLES, "values": st.lists(VALUE,
                                                                                                         max_size=2)}),
                                             max_size=3), "overwrite": JSONISH}),
    st.fixed_dictionaries({}, optional={"owner": JSONISH, "password": JSONISH, "creditCode": JSONISH,
                                        "contact": JSONISH}),
    JSONISH,
)


def nested(depth: int, kind: str) -> bytes:
    return {"json": b"[" * depth + b"]" * depth, "object": b'{"a":' * depth + b"0" + b"}" * depth,
            "cbor": b"\x81" * depth + b"\x00"}[kind]


BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    SHAPED.map(orjson.dumps),
    SHAPED.map(cbor2.dumps),
    SHAPED.map(lambda x: gzip.compress(orjson.dumps(x))),
    st.builds(nested, st.sampled_from([1, 31, 32, 33, 500, 1000, 1023, 1024, 1100]), st.sampled_from(["json", "object", "cbor"])),
    st.binary(min_size=24, max_size=120).map(lambda b: b"\x02\x01" + b[2:]),       # Handle-message-ish
)
CONTENT_TYPES = st.sampled_from([None, "application/json", "application/json", "application/cbor", "application/cbor",
                                 "application/x-hdl-message", "application/octet-stream", "text/plain",
                                 "application/json; charset=latin-1", "multipart/form-data; boundary=x",
                                 "application/x-www-form-urlencoded", ";;", "a/b/c"])
ENCODINGS = st.sampled_from([None] * 6 + ["identity", "gzip", "deflate", "GZIP", "x-junk", "gzip, identity", ""])


def credentials(live):
    junk = st.one_of(st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
                     st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=30)
                     .map(lambda t: "Basic " + t),
                     st.sampled_from(["Bearer x", "Basic", "Basic =", "Digest a=b"]))
    valid = st.sampled_from([live.ent_admin["Authorization"], live.node_admin["Authorization"]])
    return st.one_of(st.none(), valid, valid, junk)


@st.composite
def requests(draw, live) -> tuple[bytes, bool]:
    """One request's bytes, and whether the connection is half-closed after it."""
    method, path = draw(targets())
    body = draw(BODIES)
    headers = [("Host", "node"), ("Connection", "close")]
    for name, value in [("Content-Type", draw(CONTENT_TYPES)), ("Content-Encoding", draw(ENCODINGS)),
                        ("Authorization", draw(credentials(live))),
                        ("Accept", draw(st.sampled_from([None, "application/cbor", "*/*", "text/html"])))]:
        if value is not None:
            headers.append((name, value))
    length = draw(st.sampled_from(["exact"] * 6 + ["none", "short", "long", "chunked", "bad-chunked"]))
    if length == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    elif length == "bad-chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        body = b"zz\r\n" + body
    elif length == "none":
        body = b""
    else:
        shift = {"exact": 0, "short": -draw(st.integers(1, 10)), "long": draw(st.integers(1, 1000))}[length]
        headers.append(("Content-Length", str(max(0, len(body) + shift))))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1", "replace") + b"\r\n" + body, length == "long"


@pytest.fixture
def settings(tmp_path):
    # A lock-out would stop valid credentials from reaching the body decoders.
    return load_settings(env={}, overrides={"node.home": str(tmp_path / "home"), "http.port": 0, "handle.port": 0,
                                             "auth.failure_delay": 0.0, "auth.lockout_failures": 1_000_000,
                                             "http.max_body_bytes": LIMIT})


@hsettings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
async def test_no_500_and_no_traceback(live, node_log, data):
    request, half_close = data.draw(requests(live), label="request")
    node_log.records.clear()
    reply = await exchange(live.running.http_port, request, eof=half_close)
    status = status_of(reply)
    assert status is None or status < 500, reply[:300]
    assert not node_log.bad()
