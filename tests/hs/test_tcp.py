"""The TCP server and the quirks of real clients (HANDLE-WIRE.md): a site-info
request first on a reused connection, half-close after sending, reading until
the server closes, pipelined requests."""

from __future__ import annotations

import asyncio

from protocol.codes import RC
from protocol.handle import GetSiteInfoResponse, ResolutionResponse, decode
from resolver.hs.client import split_messages
from tests.protocol.handle.wirebuild import fixture

from .conftest import PRODUCT

SITE = "caict-idsdk-2.0.3_tcp_get-site-info.req.bin"
FOUND = "caict-idsdk-2.0.3_tcp_resolve-found.req.bin"
MISSING = "caict-idsdk-2.0.3_tcp_resolve-missing.req.bin"
PY = "py-handleclient_tcp_resolve-v2.11.req.bin"


async def test_site_info_first_then_resolution_on_the_same_connection(hs):
    """The CAICT SDK: get site info, then resolve, then resolve again, one connection."""
    async with hs.client("tcp") as client:
        (site,) = await client.exchange(fixture(SITE), decode(fixture(SITE)).request_id)
        (found,) = await client.exchange(fixture(FOUND), decode(fixture(FOUND)).request_id)
        (missing,) = await client.exchange(fixture(MISSING), decode(fixture(MISSING)).request_id)
        assert client.channel.connects == 1
    assert isinstance(site.body, GetSiteInfoResponse) and site.response_code == RC.SUCCESS
    assert isinstance(found.body, ResolutionResponse) and found.body.handle == PRODUCT
    assert missing.response_code == RC.HANDLE_NOT_FOUND


async def test_half_close_after_sending_gets_the_reply(hs):
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    writer.write(fixture(PY))
    writer.write_eof()                         # half-close: nothing more will come
    data = await reader.read()                 # until the server closes
    writer.close()
    (reply,) = split_messages(data)
    assert reply.request_id == decode(fixture(PY)).request_id
    assert reply.response_code == RC.SUCCESS and reply.body.handle == PRODUCT


async def test_half_close_with_two_requests_gets_both_replies(hs):
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    writer.write(fixture(SITE) + fixture(FOUND))
    writer.write_eof()
    data = await reader.read()
    writer.close()
    replies = split_messages(data)
    assert [r.request_id for r in replies] == [decode(fixture(SITE)).request_id, decode(fixture(FOUND)).request_id]


async def test_read_until_close_gets_the_reply_then_the_close(hs):
    """A client that never half-closes and reads to EOF: the idle timeout closes."""
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    writer.write(fixture(PY))
    data = await reader.read()                 # returns once the server closes (idle timeout)
    writer.close()
    (reply,) = split_messages(data)
    assert reply.body.handle == PRODUCT


async def test_pipelined_requests_are_answered_in_order(hs):
    names = [FOUND, MISSING, SITE, PY, FOUND]
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    writer.write(b"".join(fixture(n) for n in names))      # all at once, before reading anything
    await writer.drain()
    replies = []
    while len(replies) < len(names):
        head = await reader.readexactly(20)
        length = int.from_bytes(head[16:20], "big")
        replies += split_messages(head + await reader.readexactly(length))
    writer.close()
    assert [r.request_id for r in replies] == [decode(fixture(n)).request_id for n in names]
    assert [r.response_code for r in replies] == [1, 100, 1, 1, 1]


async def test_request_split_across_many_writes(hs):
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    for i in range(0, len(fixture(PY)), 7):
        writer.write(fixture(PY)[i:i + 7])
        await writer.drain()
    writer.write_eof()
    (reply,) = split_messages(await reader.read())
    writer.close()
    assert reply.body.handle == PRODUCT


async def test_idle_connection_without_a_request_is_closed(hs):
    reader, writer = await asyncio.open_connection(hs.host, hs.port)
    assert await reader.read() == b""           # closed by the idle timeout, nothing sent
    writer.close()


async def test_many_connections_at_once(hs):
    async def one(i: int) -> int:
        async with hs.client("tcp") as client:
            return (await client.resolve(PRODUCT)).values[0].index
    assert await asyncio.gather(*(one(i) for i in range(30))) == [1] * 30


async def test_stopping_closes_idle_connections_at_once(tmp_path):
    from .conftest import hs_node
    async with hs_node(tmp_path, **{"handle.idle_timeout": 600}) as hs:
        reader, writer = await asyncio.open_connection(hs.host, hs.port)
        writer.write(fixture(PY))
        head = await reader.readexactly(20)
        await reader.readexactly(int.from_bytes(head[16:20], "big"))      # answered, now idle
    assert await reader.read() == b""                                       # closed by the shutdown
    writer.close()


async def test_client_reconnects_when_the_server_closed_its_idle_connection(hs):
    async with hs.client("tcp") as client:
        await client.resolve(PRODUCT)
        await client.channel._reader.read()          # the node closes the idle connection (EOF seen here)
        assert (await client.resolve(PRODUCT)).handle == PRODUCT
        assert client.channel.connects == 2
