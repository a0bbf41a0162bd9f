"""Bad input of every kind: answered RC 4 when a request id can be read, dropped
otherwise, and never in the way of other clients."""

from __future__ import annotations

import asyncio
import random

import pytest

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, DeleteHandleRequest, EnvFlag, GenericRequest, OpCode,
                             ResolutionRequest, ResolutionResponse, decode, encode, make_reply, make_request)
from resolver.hs.client import HDL_MIME_TYPE, split_messages
from tests.protocol.handle.wirebuild import envelope, fixture, message, s, u32

from .conftest import NOW, PRODUCT

PY = "py-handleclient_tcp_resolve-v2.11.req.bin"


def resolution(handle: str = PRODUCT, *, request_id: int = 7, indexes=(), types=(), now: int = NOW,
               **kw) -> bytes:
    return encode(make_request(ResolutionRequest(handle, tuple(indexes), tuple(types)), request_id=request_id,
                               now=now, **kw))


async def talk(hs, data: bytes, *, eof: bool = True) -> list:
    """Send raw bytes on a new TCP connection; every reply until the server closes."""
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    writer.write(data)
    if eof:
        writer.write_eof()
    out = await reader.read()
    writer.close()
    return split_messages(out)


def raw_resolution(handle_bytes: bytes, *, request_id: int = 7, extra: bytes = b"") -> bytes:
    body = u32(len(handle_bytes)) + handle_bytes + u32(0) + u32(0) + extra
    return message(OpCode.RESOLUTION, 0, body, request_id=request_id, expiration=NOW + 100)


async def test_garbage_without_an_envelope_is_dropped(hs):
    assert await talk(hs, b"\x02\x0bhello") == []


@pytest.mark.parametrize("case", ["version", "compressed", "too-long", "body", "cut-short"])
async def test_malformed_request_with_an_id_gets_rc4(hs, case):
    good = fixture(PY)
    if case == "version":
        data = bytes([3, 0]) + good[2:]
    elif case == "compressed":
        data = good[:2] + bytes([good[2] | EnvFlag.COMPRESSED]) + good[3:]
    elif case == "too-long":                       # over handle.max_message_bytes: the body is never read
        data = envelope(2, 11, 99, 300 * 1024) + b"x" * 100
    elif case == "body":
        data = raw_resolution(b"88.118.8/x", request_id=99, extra=b"\x00")      # a stray trailing byte
    else:
        data = fixture(PY)[:-10]
    replies = await talk(hs, data)
    assert len(replies) == 1 and replies[0].response_code == RC.PROTOCOL_ERROR
    expected_id = 99 if case in ("too-long", "body") else decode(good).request_id
    assert replies[0].request_id == expected_id
    if case == "version":
        assert replies[0].version == (2, 11)                # answered in the newest version it speaks


async def test_a_malformed_body_leaves_the_connection_usable(hs):
    replies = await talk(hs, raw_resolution(b"\xff\xfe", request_id=5) + fixture(PY))
    assert [(r.request_id, r.response_code) for r in replies] == [(5, RC.PROTOCOL_ERROR),
                                                                  (decode(fixture(PY)).request_id, RC.SUCCESS)]


async def test_an_oversized_message_does_not_disturb_other_clients(hs):
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    writer.write(envelope(2, 11, 1234, 10 * 1024 * 1024) + b"\0" * 65536)   # claims 10 MiB
    async with hs.client() as other:
        assert (await other.resolve(PRODUCT)).handle == PRODUCT
    (reply,) = split_messages(await reader.read())                          # RC 4, then closed
    writer.close()
    assert reply.request_id == 1234 and reply.response_code == RC.PROTOCOL_ERROR


@pytest.mark.parametrize("what", ["indexes", "types", "handle"])
async def test_limits(hs, what):
    if what == "indexes":
        data = resolution(indexes=range(1, 1026))
    elif what == "types":
        data = resolution(types=[f"T{i}" for i in range(1025)])
    else:
        data = raw_resolution(b"88.118.8/" + b"x" * 250, request_id=7)        # 259 bytes > 255
    (reply,) = await talk(hs, data)
    assert reply.request_id == 7 and reply.response_code == RC.PROTOCOL_ERROR


async def test_expired_request_is_refused_and_no_expiration_is_accepted(hs):
    (reply,) = await talk(hs, resolution(now=NOW - 50_000))             # expired 12 h + 50 000 s ... ago
    assert reply.response_code == RC.ERROR and "expired" in reply.body.message
    data = bytearray(resolution(request_id=8))
    data[ENVELOPE_SIZE + 16:ENVELOPE_SIZE + 20] = bytes(4)              # expiration 0: not set
    (reply,) = await talk(hs, bytes(data))
    assert reply.response_code == RC.SUCCESS


async def test_unsupported_operation_is_rc5(hs):
    data = encode(make_request(GenericRequest("0.NA/88.118.8"), request_id=3, now=NOW, op_code=OpCode.HOME_PREFIX))
    unknown = message(9999, 0, s("88.118.8/x"), request_id=4, expiration=NOW + 10)
    replies = await talk(hs, data + unknown)
    assert [(r.request_id, r.response_code) for r in replies] == [(3, RC.OPERATION_NOT_SUPPORTED),
                                                                  (4, RC.OPERATION_NOT_SUPPORTED)]


async def test_a_response_sent_to_the_server_is_dropped(hs):
    request = decode(fixture(PY))
    response = encode(make_reply(request, ResolutionResponse(PRODUCT), now=NOW))
    replies = await talk(hs, response + fixture(PY))
    assert len(replies) == 1 and replies[0].response_code == RC.SUCCESS


async def test_invalid_and_slashless_handles(hs):
    replies = await talk(hs, resolution("88.118.8/a\x01b", request_id=1) + resolution("88.118.8", request_id=2)
                         + resolution("88.118.8/ABSENT", request_id=3))
    # A bare prefix is its prefix record 0.NA/88.118.8 (Handle.Net's reading): homed here, so this node's.
    assert [(r.request_id, r.response_code) for r in replies] == [
        (1, RC.INVALID_HANDLE), (2, RC.SUCCESS), (3, RC.HANDLE_NOT_FOUND)]
    assert replies[1].body.handle == "88.118.8" and [v.type for v in replies[1].body.values] == ["HS_SITE", "HS_ADMIN"]


async def test_admin_request_with_a_bad_handle_is_refused_before_any_challenge(hs):
    data = encode(make_request(DeleteHandleRequest("no slash here\x02"), request_id=6, now=NOW))
    (reply,) = await talk(hs, data)
    assert reply.response_code == RC.INVALID_HANDLE and reply.envelope.session_id == 0


async def test_http_transport_bad_input_and_neighbours(hs):
    url = f"{hs.url}/{PRODUCT.replace('/', '%2F')}"
    headers = {"Content-Type": HDL_MIME_TYPE}
    async with hs.session.post(url, data=b"\x00" * 5, headers=headers) as r:
        assert r.status == 400 and await r.read() == b""                   # no request id: nothing to answer
    async with hs.session.post(url, data=raw_resolution(b"\xff", request_id=77), headers=headers) as r:
        (reply,) = split_messages(await r.read())
        assert r.status == 200 and reply.request_id == 77 and reply.response_code == RC.PROTOCOL_ERROR
    async with hs.session.post(f"{hs.url}/", data=fixture(PY), headers=headers) as r:     # the path is not read
        (reply,) = split_messages(await r.read())
        assert r.status == 200 and r.content_type == HDL_MIME_TYPE and reply.body.handle == PRODUCT
    async with hs.session.post(url, data=fixture(PY), headers={"Content-Type": "application/json"}) as r:
        assert r.status == 415
    async with hs.session.post(f"{hs.url}/api/handles/{PRODUCT}", data=fixture(PY), headers=headers) as r:
        assert r.status == 405                                             # /api stays the REST API's
    async with hs.session.get(f"{hs.url}/{PRODUCT}", allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == "https://acme.example/p/123"   # the proxy still works
    assert await hs.metric("idnode_hs_malformed_total", protocol="hs-http") == 2


async def test_mutated_requests_never_break_the_service(hs):
    """Thousands of corrupted captured requests straight into the transport-independent
    handler: each is answered (RC 4 or a proper reply) or dropped, never an exception."""
    rng = random.Random(20261127)
    seeds = [fixture(PY), fixture("caict-idsdk-2.0.3_tcp_get-site-info.req.bin"),
             encode(make_request(DeleteHandleRequest(PRODUCT), request_id=1, now=NOW))]
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if not data:
                data += bytes([rng.randrange(256)])
            elif kind < 0.6:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif kind < 0.8:
                del data[rng.randrange(len(data)):]
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        replies = hs.service.handle(bytes(data), "127.0.0.1", "tcp")
        if callable(replies):
            replies = replies()
        elif asyncio.iscoroutine(replies):
            replies = await replies
        replies = [replies] if type(replies) is bytes else [r async for r in replies]
        assert len(replies) <= 1
        for wire in replies:
            reply = decode(wire)
            assert reply.is_response and not reply.expired(NOW)
    assert (await hs.store.get_handle(PRODUCT)) is not None                # no mutation was ever authorized
