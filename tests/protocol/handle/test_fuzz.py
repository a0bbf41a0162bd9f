"""Fuzzing the decoder: whole random messages round-trip; random, mutated and
truncated bytes either parse or raise HandleProtocolError, nothing else."""

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.handle import (AddValueRequest, Challenge, ChallengeAnswerRequest, CreateHandleRequest,
                             CreateHandleResponse, Credential, DeleteHandleRequest, EmptyResponse, EnvFlag, Envelope,
                             ErrorResponse, GenericRequest, GetSiteInfoRequest, GetSiteInfoResponse,
                             HandleProtocolError, HashCode, Header, ListHandlesRequest, ListHandlesResponse, Message,
                             ModifyValueRequest, OpCode, OpFlag, RawBody, Reassembler, ReferralResponse,
                             RemoveValueRequest, RequestDigest, ResolutionRequest, ResolutionResponse,
                             VerifyChallengeRequest, VerifyChallengeResponse, as_rc, decode, encode,
                             split_datagrams)
from protocol.values import HandleValue, Reference

from .wirebuild import FIXTURES

FIXTURE_BYTES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.bin"))]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u32 = st.integers(0, 0xFFFFFFFF)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
handles = text
small_bytes = st.binary(max_size=40)
references = st.builds(Reference, handles, u32)
values = st.builds(HandleValue, index=u32, type=text, data=small_bytes, ttl=u32, ttl_absolute=st.booleans(),
                   timestamp=u32, permissions=st.integers(0, 255),
                   references=st.lists(references, max_size=3).map(tuple))
value_lists = st.lists(values, max_size=3).map(tuple)
u32_lists = st.lists(u32, max_size=5).map(tuple)
ERROR_RCS = [2, 3, 4, 5, 6, 7, 100, 101, 102, 200, 201, 202, 300, 301, 400, 401, 403, 404, 405, 406, 500, 505,
             601, 605, 0xFFFFFFFF]

# (body strategy, opCode strategy, responseCode strategy)
CASES = [
    (st.builds(ResolutionRequest, handles, u32_lists, st.lists(text, max_size=4).map(tuple)), st.just(1), st.just(0)),
    (st.builds(ResolutionResponse, handles, value_lists), st.just(1), st.just(1)),
    (st.builds(GetSiteInfoRequest, handles), st.just(2), st.just(0)),
    (st.builds(GetSiteInfoResponse, small_bytes), st.just(2), st.just(1)),
    (st.builds(ErrorResponse, text), st.sampled_from([1, 2, 100, 200, 9999]), st.sampled_from(ERROR_RCS)),
    (st.builds(ReferralResponse, handles, st.none() | value_lists), st.just(1), st.sampled_from([302, 303])),
    (st.builds(CreateHandleRequest, handles, value_lists), st.just(100), st.just(0)),
    (st.builds(CreateHandleResponse, st.none() | handles), st.just(100), st.just(1)),
    (st.builds(DeleteHandleRequest, handles), st.just(101), st.just(0)),
    (st.builds(AddValueRequest, handles, value_lists), st.just(102), st.just(0)),
    (st.builds(RemoveValueRequest, handles, u32_lists), st.just(103), st.just(0)),
    (st.builds(ModifyValueRequest, handles, value_lists), st.just(104), st.just(0)),
    (st.builds(ListHandlesRequest, handles), st.just(105), st.just(0)),
    (st.builds(ListHandlesResponse, st.lists(handles, max_size=4).map(tuple)), st.sampled_from([105, 302]),
     st.just(1)),
    (st.builds(GenericRequest, handles), st.sampled_from([300, 301, 302, 401, 1000, 1003]), st.just(0)),
    (st.builds(EmptyResponse), st.sampled_from([101, 102, 103, 104, 300, 301, 401, 402, 1003]), st.just(1)),
    (st.builds(Challenge, small_bytes), st.sampled_from([1, 100, 101, 102]), st.just(402)),
    (st.builds(ChallengeAnswerRequest, text, handles, u32, small_bytes), st.just(200), st.just(0)),
    (st.one_of(st.builds(VerifyChallengeRequest, handles, u32, small_bytes, small_bytes, small_bytes),
               st.sampled_from([(HashCode.MD5, 16), (HashCode.SHA1, 20), (HashCode.SHA256, 32)]).flatmap(
                   lambda a: st.builds(VerifyChallengeRequest, handles, u32, small_bytes,
                                       st.binary(min_size=a[1], max_size=a[1]), small_bytes, st.just(a[0])))),
     st.just(201), st.just(0)),
    (st.builds(VerifyChallengeResponse, st.booleans()), st.just(201), st.just(1)),
    (st.builds(RawBody, small_bytes), st.sampled_from([1001, 1002, 77777]), st.just(0)),
]

digests = st.one_of(
    st.sampled_from([(HashCode.MD5, 16), (HashCode.SHA1, 20), (HashCode.SHA256, 32)]).flatmap(
        lambda a: st.binary(min_size=a[1], max_size=a[1]).map(lambda d: RequestDigest(a[0], d))),
    small_bytes.map(lambda d: RequestDigest(HashCode.MD5_OLD_FORMAT, d)),
)
credentials = st.builds(Credential, text, small_bytes, handles, u32, st.integers(0, 0xFFFF), st.just(0),
                        st.integers(0, 255))
envelopes = st.builds(Envelope, st.just(2), st.integers(1, 11),
                      st.sampled_from([0, 0x20, 0x04, 0x1C]).map(EnvFlag), st.integers(0, 3),
                      st.integers(0, 255), u32, u32, u32)


@st.composite
def messages(draw) -> Message:
    body_st, op_st, rc_st = draw(st.sampled_from(CASES))
    body, op, rc = draw(body_st), draw(op_st), draw(rc_st)
    env = draw(envelopes)
    if rc == 303:
        env = env.with_(minor=draw(st.integers(5, 11)))     # a referral only from 2.5 on
    flags = draw(u32) & ~int(OpFlag.RD)
    digest = draw(st.none() | digests) if rc else None
    if digest is not None:
        flags |= int(OpFlag.RD)
    header = Header(OpCode(op), as_rc(rc), OpFlag(flags),
                    draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 255)), draw(u32), draw(st.integers(0, 255)))
    return Message(header, body, env, digest, draw(st.none() | credentials))


def decodes_or_refuses(data: bytes) -> Message | None:
    """The property: either a Message or HandleProtocolError, nothing else.
    When it parses (with its credential length present) it re-encodes to the
    same bytes."""
    try:
        msg = decode(data)
    except HandleProtocolError:
        return None
    body_end = 20 + 24 + struct.unpack_from(">I", data, 40)[0]
    if body_end < len(data):
        assert encode(msg) == data
    return msg


@FUZZ
@given(messages())
def test_whole_messages_round_trip(msg):
    wire = encode(msg)
    back = decode(wire)
    assert back == msg.with_(envelope=msg.envelope.with_(message_length=len(wire) - 20))
    assert encode(back) == wire


@FUZZ
@given(messages(), st.data())
def test_mutated_messages(msg, data):
    wire = bytearray(encode(msg))
    kind = data.draw(st.sampled_from(["flip", "cut", "insert", "splice"]))
    pos = data.draw(st.integers(0, len(wire) - 1))
    if kind == "flip":
        wire[pos] = data.draw(st.integers(0, 255))
    elif kind == "cut":
        del wire[pos:]
    elif kind == "insert":
        wire[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        wire[pos:pos + 4] = data.draw(st.binary(min_size=4, max_size=4))
    decodes_or_refuses(bytes(wire))


@FUZZ
@given(st.sampled_from(FIXTURE_BYTES), st.integers(0, 79), st.integers(0, 255))
def test_fixture_byte_mutations(fixture_bytes, pos, byte):
    data = bytearray(fixture_bytes)
    data[pos % len(data)] = byte
    decodes_or_refuses(bytes(data))


def test_fixture_every_truncation_and_every_byte_flip():
    for data in FIXTURE_BYTES:
        for n in range(len(data)):
            assert decodes_or_refuses(data[:n]) is None          # every truncation is refused
        for pos in range(len(data)):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[pos] ^= 1 << bit
                decodes_or_refuses(bytes(flipped))


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data):
    decodes_or_refuses(data)


@FUZZ
@given(st.sampled_from([0, 1, 2, 100, 101, 102, 103, 104, 105, 200, 201, 300, 301, 302, 400, 401, 402, 1000,
                        2000, 99999]),
       st.sampled_from([0, 1, 2, 100, 302, 303, 402, 601]), u32, st.binary(max_size=200), st.integers(1, 11))
def test_random_bodies_behind_a_valid_header(op, rc, flags, body, minor):
    msg = struct.pack(">IIIHBBII", op, rc, flags, 0xFFFF, 0, 0, 0, len(body)) + body + b"\x00\x00\x00\x00"
    env = struct.pack(">BBBBIIII", 2, minor, 0, 0, 0, 1, 0, len(msg))
    decodes_or_refuses(env + msg)


@FUZZ
@given(st.lists(st.binary(max_size=520), max_size=6), st.lists(st.integers(0, 3), min_size=6, max_size=6))
def test_reassembler_takes_anything(datagrams, ports):
    r = Reassembler(max_entries=4, max_pending_bytes=4096)
    for i, d in enumerate(datagrams):
        try:
            out = r.feed(("127.0.0.1", ports[i]), d, now=float(i))
        except HandleProtocolError:
            continue
        if out is not None:
            decodes_or_refuses(out)
    assert r.pending_bytes <= 4096 and len(r) <= 4


@FUZZ
@given(messages(), st.randoms(use_true_random=False))
def test_split_then_reassemble_any_message(msg, rnd):
    wire = encode(msg)
    if len(wire) - 20 > 256 * 1024:
        return
    packets = split_datagrams(wire)
    rnd.shuffle(packets)
    r = Reassembler()
    outs = [o for o in (r.feed("peer", p, now=0.0) for p in packets) if o is not None]
    assert len(outs) == 1
    assert decode(outs[0]).body == msg.body
