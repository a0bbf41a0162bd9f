"""Every captured client request, sent to the live node over TCP, UDP and HTTP;
the replies decoded by the node's own client and checked value by value."""

from __future__ import annotations

import pytest

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, ErrorResponse, GetSiteInfoResponse, OpCode, OpFlag, ResolutionResponse,
                             decode)
from protocol.valuetypes import Interface, SiteInfo
from tests.protocol.handle.wirebuild import FIXTURES, fixture

from .conftest import NOW, PRODUCT, PRODUCT_VALUES, PUBLIC

NAMES = sorted(p.name for p in FIXTURES.glob("*.bin"))
TCP_NAMES = [n for n in NAMES if "_tcp_" in n]
UDP_NAMES = [n for n in NAMES if "_udp_" in n]


def check_reply(name: str, reply, hs) -> None:
    request = decode(fixture(name))
    assert reply.request_id == request.request_id
    assert reply.version == request.version                   # answered in the client's own version
    assert reply.envelope.session_id == request.envelope.session_id
    assert reply.op_code == request.op_code
    assert OpFlag.AT in reply.op_flags                         # authoritative
    assert reply.header.expiration == NOW + 43200 and not reply.expired(NOW)
    assert reply.header.site_serial == 1
    assert reply.request_digest is None                        # none of them set RD
    if request.op_code == OpCode.GET_SITE_INFO:
        assert reply.response_code == RC.SUCCESS and isinstance(reply.body, GetSiteInfoResponse)
        site = SiteInfo.decode(reply.body.site)
        assert site.serial == 1 and site.is_primary and (site.major, site.minor) == (2, 11)
        (server,) = site.servers
        assert server.address_text == "127.0.0.1"
        assert {(i.transport, i.port) for i in server.interfaces} == {
            (Interface.TCP, hs.port), (Interface.UDP, hs.port), (Interface.HTTP, hs.http_port)}
        assert all(i.query for i in server.interfaces)
    elif request.body.handle.endswith("/nope"):
        assert reply.response_code == RC.HANDLE_NOT_FOUND and isinstance(reply.body, ErrorResponse)
    else:
        assert reply.response_code == RC.SUCCESS and isinstance(reply.body, ResolutionResponse)
        assert reply.body.handle == PRODUCT
        assert [(v.index, v.type) for v in reply.body.values] == PUBLIC     # the admin-only EMAIL left out
        by_index = {v.index: v for v in PRODUCT_VALUES}
        for v in reply.body.values:
            want = by_index[v.index]
            assert (v.data, v.ttl, v.permissions, v.ttl_absolute) == (want.data, want.ttl, want.permissions, False)


@pytest.mark.parametrize("name", TCP_NAMES)
async def test_fixture_over_tcp(hs, name):
    async with hs.client("tcp") as client:
        (reply,) = await client.exchange(fixture(name), decode(fixture(name)).request_id)
    check_reply(name, reply, hs)


@pytest.mark.parametrize("name", UDP_NAMES)
async def test_fixture_over_udp(hs, name):
    async with hs.client("udp") as client:
        (reply,) = await client.exchange(fixture(name), decode(fixture(name)).request_id)
    check_reply(name, reply, hs)


@pytest.mark.parametrize("name", NAMES)
async def test_fixture_over_http(hs, name):
    async with hs.client("http") as client:
        (reply,) = await client.exchange(fixture(name), decode(fixture(name)).request_id, PRODUCT)
    check_reply(name, reply, hs)


async def test_every_fixture_on_one_connection(hs):
    """Sent back to back on one TCP connection, answered in order."""
    names = TCP_NAMES
    async with hs.client("tcp") as client:
        for name in names:
            (reply,) = await client.exchange(fixture(name), decode(fixture(name)).request_id)
            check_reply(name, reply, hs)
        assert client.channel.connects == 1


async def test_rd_flag_gets_the_digest_of_the_bytes_sent(hs):
    """RD set on a captured 2.3 request: the reply opens with SHA-1 of header + body as sent."""
    import hashlib

    data = bytearray(fixture("handlenet-8.1.4_tcp_resolve.req.bin"))
    data[ENVELOPE_SIZE + 9] |= 0x80                                   # RD = 0x00800000
    request = decode(bytes(data))
    async with hs.client("tcp") as client:
        (reply,) = await client.exchange(bytes(data), request.request_id)
    body_len = int.from_bytes(data[ENVELOPE_SIZE + 20:ENVELOPE_SIZE + 24], "big")
    sent = bytes(data[ENVELOPE_SIZE:ENVELOPE_SIZE + 24 + body_len])
    assert reply.request_digest.digest == hashlib.sha1(sent).digest()
    assert reply.request_digest.matches(request) and OpFlag.RD in reply.op_flags


async def test_metrics_per_protocol_and_operation(hs):
    async with hs.client("tcp") as client:
        for name in TCP_NAMES:
            await client.exchange(fixture(name), decode(fixture(name)).request_id)
    async with hs.client("udp") as client:
        await client.resolve(PRODUCT)

    async def requests(protocol: str, operation: str, result: str) -> float:
        return await hs.metric("idnode_requests_total", protocol=protocol, operation=operation, result=result)

    assert await requests("hs-tcp", "resolution", "success") == len(TCP_NAMES) - 2
    assert await requests("hs-tcp", "resolution", "handle_not_found") == 1
    assert await requests("hs-tcp", "get_site_info", "success") == 1
    assert await requests("hs-udp", "resolution", "success") == 1
    assert await requests("hs-http", "resolution", "success") == 0
