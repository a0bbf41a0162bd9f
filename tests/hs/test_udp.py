"""The UDP server: multi-packet replies and requests, incomplete sets, bad datagrams."""

from __future__ import annotations

import asyncio

import pytest

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, UDP_DATAGRAM_BYTES, EnvFlag, Envelope, ResolutionRequest, decode,
                             encode, make_request, split_datagrams)
from protocol.values import HandleValue
from protocol.handle.fastpath import PlainResolution, plain_datagrams, udp_parts
from resolver.hs.service import udp_reply_bytes
from resolver.hs.udp import MAX_PENDING_SETS
from tests.protocol.handle.wirebuild import fixture

from .conftest import NOW, PRODUCT, hs_node

BIG = "88.118.8/big-record"
BIG_VALUES = tuple(HandleValue(i, "DESC", f"value {i} ".encode() * 30, permissions=0x0E) for i in range(1, 41))


class Queue(asyncio.Queue):
    async def get(self) -> bytes:
        return await asyncio.wait_for(super().get(), 10.0)     # a safety net against a lost datagram


class Datagrams(asyncio.DatagramProtocol):
    """Every datagram the node sends back, in order."""

    def __init__(self) -> None:
        self.queue: Queue = Queue()

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait(data)


async def udp_socket(hs):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Datagrams, remote_addr=(hs.host, hs.port))
    return transport, proto


@pytest.fixture
async def hs_wide(tmp_path):
    """A node that sends answers of any size over UDP (not the default)."""
    async with hs_node(tmp_path, **{"handle.max_udp_reply_bytes": 1 << 20}) as node:
        yield node


def resolution(handle: str, request_id: int, types: tuple[str, ...] = ()) -> bytes:
    return encode(make_request(ResolutionRequest(handle, (), types), request_id=request_id, now=NOW))


async def test_large_record_comes_back_in_many_packets(hs_wide):
    hs = hs_wide
    await hs.store.put_handle(BIG, BIG_VALUES, mode="create", actor="test")
    transport, proto = await udp_socket(hs)
    transport.sendto(resolution(BIG, 77))
    first = await proto.queue.get()
    env = Envelope.from_bytes(first)
    count = -(-env.message_length // (UDP_DATAGRAM_BYTES - ENVELOPE_SIZE))
    packets = [first] + [await proto.queue.get() for _ in range(count - 1)]
    transport.close()
    assert count > 10
    assert all(len(p) <= UDP_DATAGRAM_BYTES for p in packets)
    envs = [Envelope.from_bytes(p) for p in packets]
    assert sorted(e.sequence for e in envs) == list(range(count))
    assert all(EnvFlag.TRUNCATED in e.flags and e.request_id == 77 for e in envs)
    message = bytearray(env.message_length)        # copy packet k to offset k * 492, as clients do
    for e, p in zip(envs, packets):
        message[e.sequence * 492:e.sequence * 492 + len(p) - ENVELOPE_SIZE] = p[ENVELOPE_SIZE:]
    reply = decode(envs[0].with_(flags=EnvFlag(0), sequence=0).to_bytes() + bytes(message))
    assert [(v.index, v.data) for v in reply.body.values] == [(v.index, v.data) for v in BIG_VALUES]


async def test_large_record_through_the_client(hs_wide):
    hs = hs_wide
    await hs.store.put_handle(BIG, BIG_VALUES, mode="create", actor="test")
    async with hs.client("udp") as client:
        reply = await client.resolve(BIG)
    assert [v.data for v in reply.values] == [v.data for v in BIG_VALUES]


async def test_multi_packet_request(hs):
    """A request longer than one datagram (many type filters) is put back together."""
    types = tuple(f"TYPE-{i:04d}-PADDING-PADDING" for i in range(60)) + ("URL",)
    wire = resolution(PRODUCT, 91, types)
    datagrams = split_datagrams(wire)
    assert len(datagrams) > 3
    transport, proto = await udp_socket(hs)
    for d in reversed(datagrams):                 # any order
        transport.sendto(d)
    reply = decode(await proto.queue.get())
    transport.close()
    assert reply.request_id == 91 and [v.type for v in reply.body.values] == ["URL"]


async def test_incomplete_set_times_out_and_others_are_served(hs):
    wire = resolution(PRODUCT, 501, tuple(f"T{i:03d}-PADDING-PADDING-PADDING" for i in range(40)))
    first, *rest = split_datagrams(wire)
    transport, proto = await udp_socket(hs)
    transport.sendto(first)                                   # the rest never comes ...
    transport.sendto(fixture("handlenet-8.1.4_udp_resolve.req.bin"))
    reply = decode(await proto.queue.get())                    # ... and another request is answered
    assert reply.request_id == decode(fixture("handlenet-8.1.4_udp_resolve.req.bin")).request_id
    hs.clock.advance(11)                                      # past handle.udp_timeout (10 s)
    for d in rest:                                            # too late: packet 0 was dropped
        transport.sendto(d)
    transport.sendto(resolution(PRODUCT, 502))
    reply = decode(await proto.queue.get())
    assert reply.request_id == 502                            # 501 never completed
    for d in [first]:                                         # with packet 0 again it completes
        transport.sendto(d)
    reply = decode(await proto.queue.get())
    transport.close()
    assert reply.request_id == 501 and reply.response_code == RC.VALUES_NOT_FOUND


async def test_incomplete_sets_are_bounded_and_others_are_served(hs):
    """Past the reassembler's bound new sets are dropped, single packets still
    answered; once the old sets time out, multi-packet requests work again."""
    transport, proto = await udp_socket(hs)

    async def probe(request_id: int) -> None:       # all earlier datagrams were read once this returns
        transport.sendto(resolution(PRODUCT, request_id))
        assert decode(await proto.queue.get()).request_id == request_id

    def long_request(request_id: int) -> list[bytes]:
        return split_datagrams(resolution(PRODUCT, request_id, tuple(f"T{i:03d}-PADDING-PADDING" for i in range(40))))

    for start in range(1000, 1000 + MAX_PENDING_SETS, 16):
        for request_id in range(start, start + 16):
            transport.sendto(long_request(request_id)[0])      # first packets only, never completed
        await probe(start)
    for d in long_request(7):                                  # no room for a new set: dropped
        transport.sendto(d)
    await probe(8)                                             # ... while single packets are answered
    refused = await hs.metric("idnode_requests_dropped_total", protocol="hs-udp", reason="reassembly")
    assert refused == len(long_request(7))                     # each of its datagrams found no room
    hs.clock.advance(11)                                       # the held sets expire
    for d in long_request(7):
        transport.sendto(d)
    reply = decode(await proto.queue.get())
    transport.close()
    assert reply.request_id == 7 and reply.response_code == RC.VALUES_NOT_FOUND
    expired = await hs.metric("idnode_requests_dropped_total", protocol="hs-udp", reason="reassembly")
    assert expired == refused + MAX_PENDING_SETS               # every held set, dropped unfinished


async def test_requests_beyond_the_inflight_bound_are_dropped_and_counted(hs, monkeypatch):
    import resolver.hs.udp as udp
    transport, proto = await udp_socket(hs)
    transport.sendto(resolution(PRODUCT, 1))                   # answered, and now in the cache
    assert decode(await proto.queue.get()).request_id == 1
    monkeypatch.setattr(udp, "MAX_INFLIGHT", 0)                # no room for any request that awaits
    transport.sendto(resolution(PRODUCT, 2, ("URL",)))         # filtered, the full tier's task: dropped
    transport.sendto(resolution("88.118.8/not-cached", 3))     # a miss read inline needs no task
    transport.sendto(resolution(PRODUCT, 4))                   # nor does the fast tier
    assert sorted([decode(await proto.queue.get()).request_id for _ in range(2)]) == [3, 4]
    transport.close()
    assert await hs.metric("idnode_requests_dropped_total", protocol="hs-udp", reason="busy") == 1


async def test_bad_datagrams(hs):
    transport, proto = await udp_socket(hs)
    transport.sendto(b"\x02\x0b")                             # no envelope: dropped
    good = bytearray(fixture("handlenet-8.1.4_udp_resolve.req.bin"))
    bad = bytearray(good)
    bad[ENVELOPE_SIZE + 24 + 3] = 0xFF                         # handle length runs past the body
    transport.sendto(bytes(bad))
    transport.sendto(resolution(PRODUCT, 4242))
    first = decode(await proto.queue.get())
    second = decode(await proto.queue.get())
    transport.close()
    assert first.request_id == decode(bytes(good)).request_id and first.response_code == RC.PROTOCOL_ERROR
    assert second.request_id == 4242 and second.response_code == RC.SUCCESS
    assert await hs.metric("idnode_hs_malformed_total", protocol="hs-udp") == 2


MEDIUM = "88.118.8/medium-record"
MEDIUM_VALUES = tuple(HandleValue(i, "DESC", b"m" * 2000) for i in (1, 2, 3))      # ~6 kB: past 4,096


async def replies_until_quiet(proto, settle: float = 0.5) -> list[bytes]:
    """Every datagram that arrives until none has for ``settle`` seconds."""
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(proto.queue.get(), settle))
        except asyncio.TimeoutError:
            return out


@pytest.mark.parametrize("types", [(), ("DESC",)])          # the fast tier, and the full one
async def test_an_answer_past_the_udp_bound_is_refused_small_and_whole_over_tcp(hs, types):
    await hs.store.put_handle(MEDIUM, MEDIUM_VALUES, mode="create", actor="test")
    request = resolution(MEDIUM, 66, types)
    transport, proto = await udp_socket(hs)
    transport.sendto(request)
    got = await replies_until_quiet(proto)
    transport.close()
    assert len(got) == 1 and len(got[0]) <= len(request) + 20     # no amplification
    reply = decode(got[0])
    assert (reply.request_id, reply.response_code, reply.body.message) == (66, RC.ERROR, "too large for UDP; use TCP")
    async with hs.client("tcp") as client:
        whole = await client.resolve(MEDIUM)
    assert [v.data for v in whole.values] == [v.data for v in MEDIUM_VALUES]


async def test_udp_answers_are_rate_limited_per_source_prefix_with_slip(tmp_path):
    settings = {"handle.udp_rate_exempt": "", "handle.udp_rate": 0.001, "handle.udp_burst": 5,
                "handle.udp_slip": 2}
    async with hs_node(tmp_path, **settings) as hs:
        transport, proto = await udp_socket(hs)
        for i in range(41):
            transport.sendto(resolution(PRODUCT, 100 + i))
        got = [decode(d) for d in await replies_until_quiet(proto)]
        transport.close()
        codes = [r.response_code for r in got]
        assert codes.count(RC.SUCCESS) == 5 and codes.count(RC.ERROR) == 18 and len(codes) == 23
        assert all(r.body.message == "rate limited; use TCP" for r in got if r.response_code == RC.ERROR)
        assert await hs.metric("idnode_requests_dropped_total", protocol="hs-udp", reason="rate_limit") == 18
        assert await hs.metric("idnode_hs_udp_slipped_total") == 18
        loop = asyncio.get_running_loop()                        # another /24 is not limited by this one
        other, other_proto = await loop.create_datagram_endpoint(Datagrams, local_addr=("127.0.1.7", 0),
                                                                 remote_addr=(hs.host, hs.port))
        other.sendto(resolution(PRODUCT, 999))
        reply = decode(await other_proto.queue.get())
        other.close()
        assert (reply.request_id, reply.response_code) == (999, RC.SUCCESS)
        async with hs.client("tcp") as client:                   # TCP is never rate-limited this way
            assert (await client.resolve(PRODUCT)).handle == PRODUCT


def test_the_fast_tiers_udp_size_is_what_the_datagrams_weigh():
    for body_len in (0, 1, 463, 464, 465, 956, 957, 3908, 3909, 20_000):
        parts = udp_parts(bytes(body_len))
        wire = plain_datagrams(PlainResolution("88.118.8/x", 11, 0, 1, 0, 0, 0), 1, parts, body_len, now=0,
                               site_serial=1)
        assert udp_reply_bytes(body_len) == sum(map(len, wire))
