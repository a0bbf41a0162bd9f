"""TCP framing: tables of (chunks, events) as h11 tests them, then fuzzing:
any messages in any chunks come out whole and in order; any bytes in any
chunks give only whole messages and at most one protocol error, the same
events however the stream is cut."""

import struct
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.handle import (ENVELOPE_SIZE, GetSiteInfoRequest, HandleProtocolError, Limits, OpFlag,
                             ResolutionRequest, StreamFramer, encode, make_request)

from .test_fuzz import FUZZ, messages
from .wirebuild import FIXTURES, envelope, message, s, u32


def resolve(request_id: int, handle: str = "88.118.8/product-1") -> bytes:
    return message(1, 0, s(handle) + u32(0) + u32(0), request_id=request_id)


A, B, C = resolve(1), resolve(2, "88.118.8/" + "x" * 200), resolve(3, "88.118.8/c")
SITE = message(2, 0, s(""), request_id=4)


class Refused(NamedTuple):
    """A HandleProtocolError event, by what a transport answers from."""
    request_id: int | None
    has_envelope: bool


def normal(events: list) -> list:
    out = []
    for e in events:
        if isinstance(e, HandleProtocolError):
            assert (e.request_id is None) == (e.envelope is None)
            out.append(Refused(e.request_id, e.envelope is not None))
        else:
            assert type(e) is bytes
            out.append(e)
    return out


def run(chunks, *, eof: bool = False, limits: Limits = Limits()) -> list:
    framer = StreamFramer(limits)
    events = []
    for chunk in chunks:
        events += framer.feed(chunk)
    if eof:
        events += framer.eof()
    return normal(events)


TOO_LONG = envelope(2, 11, 9, 256 * 1024 + 1)
OLD = envelope(1, 11, 10, 30) + bytes(30)
TOO_NEW = envelope(2, 12, 11, 30) + bytes(30)
MAJOR_3 = envelope(3, 1, 12, 30) + bytes(30)
MINOR_0 = envelope(2, 0, 13, 30) + bytes(30)
HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

TABLE = [
    # (name, chunks, eof, events)
    ("nothing", [], False, []),
    ("empty feeds", [b"", b"", b""], False, []),
    ("one message", [A], False, [A]),
    ("one message then EOF", [A], True, [A]),
    ("three in one chunk", [A + B + C], False, [A, B, C]),
    ("three in three chunks", [A, B, C], False, [A, B, C]),
    ("one and a half, then the rest", [A + B[:7], B[7:] + C], False, [A, B, C]),
    ("envelope then message", [A[:20], A[20:]], False, [A]),
    ("envelope split inside the length", [A[:18], A[18:]], False, [A]),
    ("byte by byte", [bytes([b]) for b in A + SITE], False, [A, SITE]),
    ("empty message (the decoder refuses it)", [envelope(2, 1, 5, 0) + A], False, [envelope(2, 1, 5, 0), A]),
    ("every supported version", [envelope(2, m, m, 0) for m in range(1, 12)], False,
     [envelope(2, m, m, 0) for m in range(1, 12)]),
    ("message too long", [TOO_LONG], False, [Refused(9, True)]),
    ("message too long after two good ones", [A + B + TOO_LONG + C], False, [A, B, Refused(9, True)]),
    ("message too long, envelope in pieces", [TOO_LONG[:10], TOO_LONG[10:19], TOO_LONG[19:]], False,
     [Refused(9, True)]),
    ("major 1", [OLD], False, [Refused(10, True)]),
    ("minor 12", [TOO_NEW], False, [Refused(11, True)]),
    ("major 3", [MAJOR_3], False, [Refused(12, True)]),
    ("minor 0", [MINOR_0], False, [Refused(13, True)]),
    ("an HTTP request", [HTTP], False, [Refused(struct.unpack(">I", HTTP[8:12])[0], True)]),
    ("input after broken is ignored", [OLD, A, B], True, [Refused(10, True)]),
    ("the rest of the chunk after broken is ignored", [A + OLD + B, C], True, [A, Refused(10, True)]),
    ("EOF with nothing buffered", [A, B], True, [A, B]),
    ("EOF at once", [], True, []),
    ("EOF inside the envelope", [A + B[:19]], True, [A, Refused(None, False)]),
    ("EOF after one byte", [b"\x02"], True, [Refused(None, False)]),
    ("EOF after the envelope", [A[:20]], True, [Refused(1, True)]),
    ("EOF one byte short", [A + B[:-1]], True, [A, Refused(2, True)]),
    ("EOF short of a too-long message", [TOO_LONG[:19]], True, [Refused(None, False)]),
]


@pytest.mark.parametrize("chunks, eof, events", [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_table(chunks, eof, events):
    assert run(chunks, eof=eof) == events


@pytest.mark.parametrize("data", [A, A + B + C, SITE + A], ids=["one", "three", "site+resolve"])
def test_split_at_every_boundary(data):
    want = run([data])
    for i in range(len(data) + 1):
        assert run([data[:i], data[i:]]) == want, i
        for j in range(i, len(data) + 1, 7):
            assert run([data[:i], data[i:j], data[j:]]) == want, (i, j)


def test_every_captured_request_frames_to_itself():
    blobs = [p.read_bytes() for p in sorted(FIXTURES.glob("*.bin"))]
    assert blobs
    assert run([b"".join(blobs)], eof=True) == blobs
    for blob in blobs:
        assert run([bytes([b]) for b in blob], eof=True) == [blob]


def test_the_limit_is_the_callers():
    limits = Limits(max_message_bytes=len(A) - 20)
    assert run([A], limits=limits) == [A]
    assert run([A + B], limits=limits) == [A, Refused(2, True)]


def test_errors_say_what_happened():
    framer = StreamFramer()
    [error] = framer.feed(TOO_LONG)
    assert "over the limit" in str(error) and error.envelope.message_length == 256 * 1024 + 1
    [error] = StreamFramer().feed(TOO_NEW)
    assert "2.12" in str(error) and error.envelope.version == (2, 12)
    framer = StreamFramer()
    assert framer.feed(A + B[:30]) == [A]
    [error] = framer.eof()
    assert str(error) == f"stream ended {len(B) - 30} bytes short of the message"
    assert error.envelope.request_id == 2 and error.op_code is None
    framer = StreamFramer()
    framer.feed(B[:5])
    [error] = framer.eof()
    assert str(error) == "stream ended 15 bytes short of the envelope"


def test_state_broken_and_buffered():
    framer = StreamFramer()
    assert not framer.broken and framer.buffered == 0
    assert framer.feed(A + B[:30]) == [A]
    assert framer.buffered == 30 and not framer.broken
    assert framer.feed(B[30:]) == [B] and framer.buffered == 0
    assert framer.feed(B[:3]) == [] and framer.buffered == 3
    assert framer.feed(B[3:20]) == [] and framer.buffered == 20
    assert framer.feed(B[20:-1]) == [] and framer.buffered == len(B) - 1
    assert normal(framer.feed(B[-1:] + OLD)) == [B, Refused(10, True)]
    assert framer.broken and framer.buffered == 0
    assert framer.feed(A) == [] and framer.eof() == [] and framer.buffered == 0

    framer = StreamFramer()
    assert framer.eof() == [] and not framer.broken
    assert framer.feed(A) == [] and framer.eof() == []          # nothing after EOF

    framer = StreamFramer()
    framer.feed(A[:10])
    assert len(framer.eof()) == 1 and framer.broken and framer.buffered == 0
    assert framer.feed(A[10:]) == [] and framer.eof() == []


def test_any_buffer_type_in_bytes_out():
    framer = StreamFramer()
    out = framer.feed(bytearray(A)) + framer.feed(memoryview(B)[:25]) + framer.feed(memoryview(B[25:] + C))
    assert out == [A, B, C] and all(type(m) is bytes for m in out)


def test_a_chunk_that_is_one_message_is_not_copied():
    framer = StreamFramer()
    [out] = framer.feed(A)
    assert out is A


def test_many_small_messages_in_one_chunk():
    stream = b"".join(resolve(i) for i in range(5000))
    framer = StreamFramer()
    out = framer.feed(stream[:-1])
    assert len(out) == 4999 and framer.buffered == len(A) - 1
    assert framer.feed(stream[-1:]) == [resolve(4999)]


def test_a_large_message_in_small_reads():
    size = 256 * 1024
    data = envelope(2, 11, 1, size) + bytes(size)
    framer = StreamFramer()
    for i in range(0, len(data) - 1000, 1000):
        assert framer.feed(data[i:i + 1000]) == []
    assert framer.feed(data[i + 1000:]) == [data] and framer.buffered == 0


# ------------------------------------------------------------------ fuzzing

handles = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
requests = st.one_of(
    st.builds(ResolutionRequest, handles, st.lists(st.integers(0, 2**32 - 1), max_size=3).map(tuple),
              st.lists(handles, max_size=3).map(tuple)),
    st.builds(GetSiteInfoRequest, handles),
)
request_wire = st.builds(
    lambda body, rid, minor, flags, session: encode(make_request(
        body, request_id=rid, now=1_790_000_000, version=(2, minor), op_flags=OpFlag(flags), session_id=session)),
    requests, st.integers(0, 2**32 - 1), st.integers(1, 11), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
any_wire = st.one_of(request_wire, messages().map(encode))


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted(p % (len(data) + 1) for p in points)
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@FUZZ
@given(st.lists(any_wire, max_size=8), st.lists(st.integers(0, 1 << 16), max_size=12), st.booleans())
def test_any_messages_in_any_chunks_come_out_whole_and_in_order(wires, points, end):
    assert run(cut(b"".join(wires), points), eof=end) == wires


@FUZZ
@given(st.lists(request_wire, max_size=4), st.sampled_from([TOO_LONG, OLD, TOO_NEW, MAJOR_3, HTTP]),
       st.binary(max_size=40), st.lists(st.integers(0, 1 << 16), max_size=12))
def test_messages_then_an_unframeable_envelope(wires, bad, junk, points):
    events = run(cut(b"".join(wires) + bad + junk, points), eof=True)
    assert events[:-1] == wires and isinstance(events[-1], Refused) and events[-1].has_envelope


# Random streams that sometimes frame: valid-looking envelopes with short
# bodies, mixed with junk (which sooner or later makes a bad envelope).
framed_piece = st.builds(lambda minor, rid, body: envelope(2, minor, rid, len(body)) + body,
                         st.integers(0, 12), st.integers(0, 2**32 - 1), st.binary(max_size=60))
noise = st.lists(st.one_of(framed_piece, st.binary(max_size=30)), max_size=8).map(b"".join)


def check_events(events: list, fed: int, framer: StreamFramer) -> None:
    """Only bytes and at most one error, last; every message exactly 20 + its length."""
    taken = 0
    for i, e in enumerate(events):
        if isinstance(e, HandleProtocolError):
            assert i == len(events) - 1 and framer.broken
            continue
        assert type(e) is bytes and len(e) >= ENVELOPE_SIZE
        assert len(e) == ENVELOPE_SIZE + struct.unpack_from(">I", e, 16)[0]
        assert e[0] == 2 and 1 <= e[1] <= 11
        taken += len(e)
    if not framer.broken:
        assert taken + framer.buffered == fed


@FUZZ
@given(st.one_of(noise, st.binary(max_size=400)), st.lists(st.integers(0, 1 << 16), max_size=12),
       st.integers(20, 300))
def test_any_bytes_in_any_chunks(data, points, max_message):
    limits = Limits(max_message_bytes=max_message)
    framer = StreamFramer(limits)
    events = []
    for chunk in cut(data, points):
        got = framer.feed(chunk)
        assert isinstance(got, list)
        events += got
    check_events(events, len(data), framer)
    buffered, broken = framer.buffered, framer.broken
    tail = framer.eof()
    assert len(tail) == (1 if buffered and not broken else 0)
    assert all(isinstance(e, HandleProtocolError) for e in tail)
    # However the stream is cut, the events are the same.
    assert normal(events + tail) == run([data], eof=True, limits=limits)
