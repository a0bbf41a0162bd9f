"""Fuzzing the plain-resolution peek: on any input it returns None or exactly
what the full decoder reads (a resolution request with no index or type
lists, same handle, ids, version, opFlags, recursion count, expiration); it
never raises. The byte-for-byte replies are tested in tests/hs/test_fastpath.py."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from protocol.handle import EnvFlag, OpCode, OpFlag, ResolutionRequest, decode, encode, make_request
from protocol.handle.fastpath import PlainResolution, peek_plain_resolution

from .test_fuzz import FIXTURE_BYTES, FUZZ
from .wirebuild import u32

NOW = 1_790_000_000
RD = int(OpFlag.RD)
CT = int(OpFlag.CT)


def peek_agrees(data: bytes) -> PlainResolution | None:
    """The property: None, or a PlainResolution the full decoder confirms."""
    plain = peek_plain_resolution(data)
    if plain is None:
        return None
    msg = decode(data)                      # a plain resolution must decode
    assert msg.op_code == OpCode.RESOLUTION and msg.response_code == 0
    assert type(msg.body) is ResolutionRequest and msg.body.indexes == () and msg.body.types == ()
    assert msg.body.handle == plain.handle
    env = msg.envelope
    assert env.version == (2, plain.minor)
    assert env.flags == EnvFlag(0) and env.sequence == 0
    assert env.request_id == plain.request_id and env.session_id == plain.session_id
    assert int(msg.op_flags) == plain.op_flags and not plain.op_flags & (RD | CT)   # CT: signed by the full path
    assert msg.header.recursion_count == plain.recursion and msg.header.expiration == plain.expiration
    assert msg.credential is None and msg.request_digest is None
    return plain


u32s = st.integers(0, 0xFFFFFFFF)
handles = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.integers(240, 270).map(lambda n: "88.118.8/" + "x" * (n - 9)),      # around the 255-byte limit
    st.integers(80, 90).map(lambda n: "88.118.8/" + "é" * n),              # ... in two-byte characters
)
plain_requests = st.builds(
    lambda handle, rid, minor, flags, session, recursion: (handle, encode(make_request(
        ResolutionRequest(handle), request_id=rid, now=NOW, version=(2, minor), op_flags=OpFlag(flags & ~(RD | CT)),
        session_id=session, recursion_count=recursion))),
    handles, u32s, st.integers(1, 11), u32s, u32s, st.integers(0, 255))


@FUZZ
@given(plain_requests)
def test_every_plain_request_is_recognised(request):
    handle, wire = request
    plain = peek_agrees(wire)
    if 1 <= len(handle.encode()) <= 255:
        assert plain is not None and plain.handle == handle
    else:
        assert plain is None                # empty, or over the decoder's limit: the full path answers


@FUZZ
@given(plain_requests, st.data())
def test_mutated_plain_requests(request, data):
    wire = bytearray(request[1])
    kind = data.draw(st.sampled_from(["flip", "bit", "insert", "delete", "splice", "cut"]))
    pos = data.draw(st.integers(0, len(wire) - 1))
    if kind == "flip":
        wire[pos] = data.draw(st.integers(0, 255))
    elif kind == "bit":
        wire[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "insert":
        wire[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    elif kind == "delete":
        del wire[pos:pos + data.draw(st.integers(1, 8))]
    elif kind == "splice":
        wire[pos:pos + 4] = data.draw(st.binary(min_size=4, max_size=4))
    else:
        del wire[pos:]
    peek_agrees(bytes(wire))


def mostly(plain, *odd):
    """``plain`` four times in five, else one of ``odd``: so that all fields
    are plain at once often enough and the peek has to look at each one."""
    return st.one_of(st.just(plain), st.just(plain), st.just(plain), st.just(plain), st.sampled_from(odd))


@FUZZ
@given(mostly(2, 1, 3), mostly(11, 0, 1, 2, 10, 12, 255), mostly(0, 1, 2, 3, 0x04, 0x20, 0x40, 0x80), mostly(0, 1),
       mostly(1, 0, 2, 100), mostly(0, 1, 2), u32s.map(lambda f: f & ~RD) | u32s,
       st.one_of(st.binary(max_size=20), st.integers(250, 260).map(lambda n: b"88.118/" + b"x" * (n - 7))),
       mostly((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)), mostly(0, -1, 1), mostly(0, -1, 1))
def test_consistent_requests_with_odd_fields(major, minor, eflags, seq, op, rc, flags, handle, counts,
                                             length_off, body_off):
    """Everything a peek checks, one field at a time, with the lengths kept
    (mostly) consistent, so that the peek has to look at the field."""
    indexes, types, credential = counts
    body = (u32(len(handle)) + handle + u32(indexes) + u32(0) * indexes + u32(types) + b"\x00\x00\x00\x01x" * types)
    cred = u32(4) + b"cred" if credential else u32(0)
    msg = struct.pack(">IIIHBBII", op, rc, flags, 0xFFFF, 0, 0, NOW, len(body) + body_off) + body + cred
    wire = struct.pack(">BBBBIIII", major, minor, eflags, 11, 5, 6, seq, len(msg) + length_off) + msg
    peek_agrees(wire)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data):
    peek_agrees(data)


@FUZZ
@given(st.binary(min_size=24, max_size=24), st.binary(max_size=40), st.integers(1, 11), st.booleans())
def test_random_header_fields_around_a_plain_body(header, handle, minor, plain_op):
    """Random header bytes (flags, serial, recursion, reserved, expiration;
    opCode and responseCode too unless ``plain_op``) with the body length
    right and a plain body."""
    body = u32(len(handle)) + handle + bytes(8)
    header = bytearray(header)
    if plain_op:
        header[0:8] = struct.pack(">II", 1, 0)
    header[20:24] = u32(len(body))
    msg = bytes(header) + body + u32(0)
    peek_agrees(struct.pack(">BBBBIIII", 2, minor, 0, 0, 0, 1, 0, len(msg)) + msg)


def test_captured_requests_and_every_byte_flip():
    recognised = 0
    for data in FIXTURE_BYTES:
        recognised += peek_agrees(data) is not None
        for pos in range(len(data)):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[pos] ^= 1 << bit
                peek_agrees(bytes(flipped))
    assert recognised == 7                  # every real client's lookup (tests/hs/test_fastpath.py)
