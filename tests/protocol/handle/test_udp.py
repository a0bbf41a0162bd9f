"""UDP: split at 492 message bytes, reassemble by (address, request id), expire."""

import random
import struct

import pytest

from protocol.handle import (ENVELOPE_SIZE, UDP_PAYLOAD_BYTES, HandleProtocolError, Limits, Reassembler,
                             ResolutionResponse, decode, encode, make_reply, split_datagrams)
from protocol.values import HandleValue

from .wirebuild import fixture

ADDR = ("127.0.0.1", 51000)
NOW = 1_790_000_000


def big_reply(n_values: int = 12, request_id_fixture: str = "handlenet-8.1.4_udp_resolve.req.bin") -> bytes:
    request = decode(fixture(request_id_fixture))
    values = tuple(HandleValue(i + 1, "URL", f"https://example.com/{i}/".encode() * 4) for i in range(n_values))
    return encode(make_reply(request, ResolutionResponse(request.body.handle, values), now=NOW))


def unpack(datagram: bytes) -> tuple:
    return struct.unpack(">BBBBIIII", datagram[:ENVELOPE_SIZE])


def test_split_layout():
    wire = big_reply()
    message_len = len(wire) - ENVELOPE_SIZE
    assert message_len > 2 * UDP_PAYLOAD_BYTES
    packets = split_datagrams(wire)
    assert len(packets) == -(-message_len // UDP_PAYLOAD_BYTES)
    for k, p in enumerate(packets):
        major, minor, flags, s_minor, session, request, seq, length = unpack(p)
        assert (major, minor) == (2, 3) and seq == k and length == message_len
        assert flags & 0x20, "truncated flag on every packet of a set"
        assert flags & 0x03 == 2 and s_minor == 11          # suggested version kept
        assert request == 0x48E748A2
        assert len(p) == ENVELOPE_SIZE + (UDP_PAYLOAD_BYTES if k < len(packets) - 1
                                          else message_len - UDP_PAYLOAD_BYTES * k)
        assert len(p) <= 512
        # The receiver copies packet k to offset k * 492.
        assert p[ENVELOPE_SIZE:] == wire[ENVELOPE_SIZE + k * 492: ENVELOPE_SIZE + (k + 1) * 492]


@pytest.mark.parametrize("size", [1, 491, 492, 493, 984, 985])
def test_split_at_boundaries(size):
    env = struct.pack(">BBBBIIII", 2, 11, 0x22, 11, 0, 9, 0, size)   # even a stray truncated flag
    packets = split_datagrams(env + bytes(size))
    assert len(packets) == max(1, -(-size // 492))
    if len(packets) == 1:
        assert not unpack(packets[0])[2] & 0x20
    out, r = None, Reassembler()
    for p in packets:
        out = r.feed(ADDR, p, now=0.0)
    assert out[ENVELOPE_SIZE:] == bytes(size) and len(r) == 0


def test_split_refuses_a_wrong_length():
    wire = big_reply()
    with pytest.raises(ValueError):
        split_datagrams(wire[:-1])


def test_reassemble_in_order():
    wire = big_reply()
    r = Reassembler()
    packets = split_datagrams(wire)
    results = [r.feed(ADDR, p, now=0.0) for p in packets]
    assert results[:-1] == [None] * (len(packets) - 1)
    assert results[-1] == wire                  # sequence 0, truncated flag cleared
    assert len(r) == 0 and r.pending_bytes == 0
    assert decode(results[-1]).body == decode(wire).body


def test_reassemble_out_of_order_with_duplicates():
    wire = big_reply(30)
    packets = split_datagrams(wire)
    order = packets + packets[1:3]              # duplicates
    random.Random(7).shuffle(order)
    r = Reassembler()
    outs = []
    for p in order:
        out = r.feed(ADDR, p, now=1.0)
        if out is not None:
            outs.append(out)
    assert outs == [wire]
    assert len(r) == 0
    # A duplicate arriving after completion starts a new set that never finishes.
    assert r.feed(ADDR, packets[1], now=2.0) is None and len(r) == 1


def test_sets_are_kept_apart_by_address_and_request_id():
    a, b = big_reply(), big_reply(request_id_fixture="handlenet-8.1.4_tcp_resolve.req.bin")
    pa, pb = split_datagrams(a), split_datagrams(b)
    r = Reassembler()
    other = ("127.0.0.2", 51000)
    results = []
    for x, y, z in zip(pa, pb, pa):
        results += [r.feed(ADDR, x, now=0.0), r.feed(ADDR, y, now=0.0), r.feed(other, z, now=0.0)]
    assert results.count(a) == 2 and results.count(b) == 1 and len(r) == 0


def test_incomplete_set_expires():
    packets = split_datagrams(big_reply())
    r = Reassembler(timeout=5.0)
    for p in packets[:-1]:
        assert r.feed(ADDR, p, now=100.0) is None
    assert len(r) == 1 and r.pending_bytes > 0
    assert r.expire(104.9) == [] and len(r) == 1
    assert r.expire(105.0) == [(ADDR, 0x48E748A2)]
    assert len(r) == 0 and r.pending_bytes == 0 and r.dropped == 1
    # The last packet alone does not complete anything now.
    assert r.feed(ADDR, packets[-1], now=106.0) is None and len(r) == 1


def test_feed_expires_old_sets_first():
    packets = split_datagrams(big_reply())
    r = Reassembler(timeout=1.0, max_entries=1)
    assert r.feed(ADDR, packets[0], now=0.0) is None
    other = ("127.0.0.9", 1)
    assert r.feed(other, packets[0], now=0.5) is None and r.dropped == 1      # full: refused
    assert r.feed(other, packets[0], now=2.0) is None and r.dropped == 2      # old one expired, room again
    assert len(r) == 1


def test_pending_bytes_bound():
    wire = big_reply()
    total = len(wire) - ENVELOPE_SIZE
    r = Reassembler(max_pending_bytes=total * 2)
    packets = split_datagrams(wire)
    for port in range(3):
        r.feed(("127.0.0.1", port), packets[0], now=0.0)
    assert len(r) == 2 and r.pending_bytes == 2 * total and r.dropped == 1


def test_bad_datagrams_raise_with_request_id():
    packets = split_datagrams(big_reply())
    r = Reassembler()
    env = bytearray(packets[0][:ENVELOPE_SIZE])
    past_end = bytearray(packets[0])
    past_end[12:16] = struct.pack(">I", 99)
    short = packets[0][:-1]
    for bad in (bytes(past_end), short):
        with pytest.raises(HandleProtocolError) as err:
            r.feed(ADDR, bad, now=0.0)
        assert err.value.request_id == 0x48E748A2
    r.feed(ADDR, packets[0], now=0.0)
    # Same address and request id, but a message of another length: not part of this set.
    changed = bytearray(packets[1])
    changed[16:20] = struct.pack(">I", struct.unpack(">I", bytes(env[16:20]))[0] + 492)
    with pytest.raises(HandleProtocolError, match="does not belong"):
        r.feed(ADDR, bytes(changed), now=0.0)
    with pytest.raises(HandleProtocolError):
        r.feed(ADDR, b"\x02\x03", now=0.0)
    too_big = struct.pack(">BBBBIIII", 2, 3, 0x20, 0, 0, 5, 0, 1 << 20) + bytes(492)
    with pytest.raises(HandleProtocolError, match="over the limit"):
        Reassembler(limits=Limits(max_message_bytes=64 * 1024)).feed(ADDR, too_big, now=0.0)
