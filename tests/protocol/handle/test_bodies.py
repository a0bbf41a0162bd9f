"""Bodies, values, credentials and whole messages against hand-built bytes."""

from typing import get_args

import pytest

from protocol.codes import RC
from protocol.handle import (DEFAULT_LIMITS, AddValueRequest, Body, Challenge, ChallengeAnswerRequest,
                             CreateHandleRequest, CreateHandleResponse, Credential, DeleteHandleRequest, EmptyResponse, Envelope,
                             ErrorResponse, GenericRequest, GetSiteInfoRequest, GetSiteInfoResponse,
                             HandleProtocolError, HashCode, Header, Limits, ListHandlesRequest, ListHandlesResponse,
                             Message, ModifyValueRequest, OpCode, OpFlag, RawBody, ReferralResponse,
                             RemoveValueRequest, RequestDigest, ResolutionRequest, ResolutionResponse,
                             VerifyChallengeRequest, VerifyChallengeResponse, decode, decode_value, encode,
                             encode_value, make_request, protocol_error_reply, signed_data)
from protocol.values import HandleValue, Reference
from protocol.valuetypes import AdminRef, SiteInfo, VList

from .wirebuild import blob, hs_admin, hs_site, hs_vlist, message, s, u8, u16, u32, value

H = "88.118.8/product-123"
ADMIN_DATA = hs_admin(0x0FFF, "0.NA/88.118.8", 200)
SITE_DATA = hs_site(servers=((1, "127.0.0.1", b"\x00\x01key", ((3, 1, 2641), (1, 3, 8443))),
                             (2, "10.1.2.3", b"", ((2, 0, 2641),))))
VLIST_DATA = hs_vlist((("88.118.8/ADMIN", 300), ("0.NA/88.118", 200)))

# (HandleValue, its bytes per HANDLE-WIRE.md)
VALUES = [
    (HandleValue(1, "URL", b"https://example.com/a", timestamp=1_700_000_000, ttl=86400, permissions=0x0E),
     value(1, "URL", b"https://example.com/a", timestamp=1_700_000_000, ttl=86400, perms=0x0E)),
    (HandleValue(2, "EMAIL", b"", ttl=1_800_000_000, ttl_absolute=True, permissions=0x0C),
     value(2, "EMAIL", b"", ttl_type=1, ttl=1_800_000_000, perms=0x0C)),
    (HandleValue(100, "HS_ADMIN", ADMIN_DATA, permissions=0x0E), value(100, "HS_ADMIN", ADMIN_DATA, perms=0x0E)),
    (HandleValue(1, "HS_SITE", SITE_DATA), value(1, "HS_SITE", SITE_DATA)),
    (HandleValue(200, "HS_VLIST", VLIST_DATA, references=(Reference("88.118.8/x", 3), Reference("汉字/标识", 0xFFFFFFFF))),
     value(200, "HS_VLIST", VLIST_DATA, refs=(("88.118.8/x", 3), ("汉字/标识", 0xFFFFFFFF)))),
    (HandleValue(0xFFFFFFFF, "HS_SECKEY", b"\x00\xff" * 8, permissions=0x0C, timestamp=0xFFFFFFFF, ttl=0),
     value(0xFFFFFFFF, "HS_SECKEY", b"\x00\xff" * 8, perms=0x0C, timestamp=0xFFFFFFFF, ttl=0)),
    (HandleValue(7, "VENDOR.TYPE", bytes(range(256)), permissions=0xFF),
     value(7, "VENDOR.TYPE", bytes(range(256)), perms=0xFF)),
]


@pytest.mark.parametrize(("v", "wire"), VALUES, ids=lambda x: getattr(x, "type", None))
def test_value_wire_encoding(v, wire):
    assert encode_value(v) == wire
    assert decode_value(wire) == v


def test_value_data_is_what_the_typed_views_read():
    assert AdminRef.decode(decode_value(VALUES[2][1]).data) == AdminRef("0.NA/88.118.8", 200, 0x0FFF)
    site = SiteInfo.decode(decode_value(VALUES[3][1]).data)
    assert [srv.server_id for srv in site.servers] == [1, 2] and site.attribute("desc") == "test site"
    assert VList.decode(decode_value(VALUES[4][1]).data).refs == (Reference("88.118.8/ADMIN", 300),
                                                                  Reference("0.NA/88.118", 200))


@pytest.mark.parametrize("bad", [
    value(1, "URL", b"x", ttl_type=2),                        # ttl type is 0 or 1
    value(1, "URL", b"x")[:-1],                               # truncated
    value(1, "URL", b"x") + b"\x00",                          # trailing byte
    value(1, "URL", b"x", refs=(("a" * 256, 1),)),            # reference handle over 255 bytes
    value(1, "URL", b"x")[:14] + u32(2) + b"\xff\xfe" + value(1, "URL", b"x")[20:],  # type not UTF-8
])
def test_bad_values_raise_protocol_error(bad):
    with pytest.raises(HandleProtocolError):
        decode_value(bad)


VALS = tuple(v for v, _ in VALUES[:3])
VALS_WIRE = u32(3) + b"".join(w for _, w in VALUES[:3])

# (body, its bytes)
BODIES = [
    (ResolutionRequest(H), s(H) + u32(0) + u32(0)),
    (ResolutionRequest(H, (1, 100, 0xFFFFFFFF), ("URL", "HS_ADMIN")),
     s(H) + u32(3) + u32(1) + u32(100) + u32(0xFFFFFFFF) + u32(2) + s("URL") + s("HS_ADMIN")),
    (ResolutionResponse(H, VALS), s(H) + VALS_WIRE),
    (ResolutionResponse(H), s(H) + u32(0)),
    (GetSiteInfoRequest("/"), s("/")),
    (GetSiteInfoResponse(SITE_DATA), SITE_DATA),
    (ErrorResponse("handle not found"), s("handle not found")),
    (ErrorResponse(), u32(0)),
    (ReferralResponse("0.NA/88.118", VALS), s("0.NA/88.118") + VALS_WIRE),
    (ReferralResponse("0.NA/88.118"), s("0.NA/88.118")),
    (CreateHandleRequest(H, VALS), s(H) + VALS_WIRE),
    (CreateHandleResponse(), b""),
    (CreateHandleResponse("88.118.8/minted-1"), s("88.118.8/minted-1")),
    (DeleteHandleRequest(H), s(H)),
    (AddValueRequest(H, VALS[:1]), s(H) + u32(1) + VALUES[0][1]),
    (ModifyValueRequest(H, VALS[1:2]), s(H) + u32(1) + VALUES[1][1]),
    (RemoveValueRequest(H, (2, 3)), s(H) + u32(2) + u32(2) + u32(3)),
    (ListHandlesRequest("0.NA/88.118.8"), s("0.NA/88.118.8")),
    (ListHandlesResponse(("88.118.8/a", "88.118.8/标识")), u32(2) + s("88.118.8/a") + s("88.118.8/标识")),
    (ListHandlesResponse(), u32(0)),
    (GenericRequest("0.NA/88.118.8"), s("0.NA/88.118.8")),
    (EmptyResponse(), b""),
    (Challenge(bytes(range(16))), blob(bytes(range(16)))),
    (ChallengeAnswerRequest("HS_SECKEY", "88.118.8/ADMIN", 300, b"\x02" + bytes(20)),
     s("HS_SECKEY") + s("88.118.8/ADMIN") + u32(300) + blob(b"\x02" + bytes(20))),
    (ChallengeAnswerRequest("HS_PUBKEY", "0.NA/88.118", 300, s("SHA256") + blob(b"sig")),
     s("HS_PUBKEY") + s("0.NA/88.118") + u32(300) + blob(s("SHA256") + blob(b"sig"))),
    (VerifyChallengeRequest("88.118.8/ADMIN", 300, b"n" * 16, b"d" * 20, b"\x02" + bytes(20)),
     s("88.118.8/ADMIN") + u32(300) + blob(b"n" * 16) + blob(b"d" * 20) + blob(b"\x02" + bytes(20))),
    (VerifyChallengeRequest("88.118.8/ADMIN", 0, b"n", b"d" * 32, b"a", HashCode.SHA256),
     s("88.118.8/ADMIN") + u32(0) + blob(b"n") + u8(3) + b"d" * 32 + blob(b"a")),
    (VerifyChallengeResponse(True), u8(1)),
    (VerifyChallengeResponse(False), u8(0)),
    (RawBody(b"\x00\x01anything"), b"\x00\x01anything"),
]


def test_every_body_class_is_in_the_table():
    assert set(get_args(Body)) == {type(b) for b, _ in BODIES}


@pytest.mark.parametrize(("body", "wire"), BODIES, ids=lambda x: type(x).__name__)
def test_body_round_trip(body, wire):
    assert body.to_bytes() == wire
    assert type(body).from_bytes(wire) == body


@pytest.mark.parametrize(("body", "wire"), [(b, w) for b, w in BODIES if w], ids=lambda x: type(x).__name__)
def test_body_truncated_or_extended_is_refused(body, wire):
    cls = type(body)
    if cls in (RawBody, GetSiteInfoResponse):
        return                      # opaque: any length is a body
    for cut in (wire[:-1], wire[: len(wire) // 2]):
        if cls in (CreateHandleResponse, ReferralResponse) and cut == b"":
            continue
        with pytest.raises(HandleProtocolError):
            cls.from_bytes(cut)
    with pytest.raises(HandleProtocolError):
        cls.from_bytes(wire + b"\x00")


def test_limits_are_enforced():
    tight = Limits(max_handle_bytes=8, max_indexes=2, max_types=1, max_values=1, max_list_handles=1)
    with pytest.raises(HandleProtocolError, match="over the limit"):
        ResolutionRequest.from_bytes(ResolutionRequest("88.118.8/123").to_bytes(), tight)
    with pytest.raises(HandleProtocolError):
        ResolutionRequest.from_bytes(ResolutionRequest("a/b", (1, 2, 3)).to_bytes(), tight)
    with pytest.raises(HandleProtocolError):
        ResolutionRequest.from_bytes(ResolutionRequest("a/b", (), ("A", "B")).to_bytes(), tight)
    with pytest.raises(HandleProtocolError):
        CreateHandleRequest.from_bytes(CreateHandleRequest("a/b", VALS[:2]).to_bytes(), tight)
    with pytest.raises(HandleProtocolError):
        ListHandlesResponse.from_bytes(ListHandlesResponse(("a/b", "a/c")).to_bytes(), tight)
    assert ResolutionRequest.from_bytes(ResolutionRequest("a/b", (1, 2), ("A",)).to_bytes(), tight)
    # Default: a 255-byte handle passes, 256 does not.
    assert GetSiteInfoRequest.from_bytes(s("x" * 255)).handle == "x" * 255
    with pytest.raises(HandleProtocolError):
        GetSiteInfoRequest.from_bytes(s("x" * 256))


def test_lying_counts_are_refused_before_allocation():
    with pytest.raises(HandleProtocolError):
        ResolutionRequest.from_bytes(s(H) + u32(0xFFFFFFFF) + u32(1))
    with pytest.raises(HandleProtocolError):
        ResolutionResponse.from_bytes(s(H) + u32(1_000_000))


def test_verify_challenge_digest_type_must_be_known():
    with pytest.raises(HandleProtocolError, match="digest type"):
        VerifyChallengeRequest.from_bytes(s("a/b") + u32(1) + blob(b"n") + u8(9) + bytes(20) + blob(b"a"))
    with pytest.raises(HandleProtocolError):
        VerifyChallengeResponse.from_bytes(u8(2))


# ------------------------------------------------------------------ whole messages

@pytest.mark.parametrize(("op", "rc", "body", "cls"), [
    (1, 0, s(H) + u32(0) + u32(0), ResolutionRequest),
    (1, 1, s(H) + VALS_WIRE, ResolutionResponse),
    (1, 100, s("not found"), ErrorResponse),
    (1, 601, s("vendor code"), ErrorResponse),          # CAICT's own error codes keep the error layout
    (1, 302, s("0.NA/88.118"), ReferralResponse),
    (1, 303, s("0.NA/88.118") + VALS_WIRE, ReferralResponse),
    (1, 402, blob(b"nonce"), Challenge),
    (2, 1, SITE_DATA, GetSiteInfoResponse),
    (101, 1, b"", EmptyResponse),
    (105, 1, u32(1) + s("a/b"), ListHandlesResponse),
    (302, 1, u32(1) + s("0.NA/88.118.8"), ListHandlesResponse),
    (300, 0, s("0.NA/88.118.8"), GenericRequest),
    (200, 0, s("HS_SECKEY") + s("a/b") + u32(300) + blob(b"x"), ChallengeAnswerRequest),
    (201, 1, u8(1), VerifyChallengeResponse),
    (1001, 0, b"\x00\x01session", RawBody),
    (1002, 0, b"login", RawBody),
    (424242, 0, b"?", RawBody),
    (1000, 1, bytes(8), RawBody),
])
def test_message_dispatch(op, rc, body, cls):
    wire = message(op, rc, body)
    msg = decode(wire)
    assert type(msg.body) is cls
    assert int(msg.op_code) == op and int(msg.response_code) == rc
    assert encode(msg) == wire


def test_unknown_codes_are_kept():
    msg = decode(message(424242, 0, b"?", flags=0x19000107))
    assert msg.op_code.name == "UNKNOWN_424242"
    assert int(msg.op_flags) == 0x19000107 and OpFlag.TRUSTED_RESULT in msg.op_flags
    resp = decode(message(1, 777, s("?")))
    assert resp.response_code == 777 and not isinstance(resp.response_code, RC)


def test_prefix_referral_before_2_5_is_an_error_message():
    assert type(decode(message(1, 303, s("server backup"), minor=4)).body) is ErrorResponse
    assert type(decode(message(1, 303, s("0.NA/88.118"), minor=5)).body) is ReferralResponse


def test_response_digest_read_when_rd_set():
    digest = bytes(range(20))
    wire = message(1, 1, u8(2) + digest + s(H) + u32(0), flags=0x00800000)
    msg = decode(wire)
    assert msg.request_digest == RequestDigest(HashCode.SHA1, digest)
    assert msg.body == ResolutionResponse(H)
    assert encode(msg) == wire
    old = message(1, 1, blob(bytes(16)) + s(H) + u32(0), flags=0x00800000)   # u32-length MD5 form
    assert decode(old).request_digest == RequestDigest(HashCode.MD5_OLD_FORMAT, bytes(16))
    with pytest.raises(HandleProtocolError, match="digest type"):
        decode(message(1, 1, u8(7) + digest + s(H) + u32(0), flags=0x00800000))
    # A request's RD flag asks for a digest; its body carries none.
    assert decode(message(1, 0, s(H) + u32(0) + u32(0), flags=0x00800000)).request_digest is None


def test_credential_round_trip():
    section = s("SHA-256") + blob(b"\x30\x44signature")
    cred_wire = u8(0) + u8(0) + u16(0) + s("") + u32(5) + s("HS_SIGNED") + blob(section)
    wire = message(1, 1, s(H) + u32(0), flags=0x40000000, credential=cred_wire)
    msg = decode(wire)
    assert msg.credential == Credential("HS_SIGNED", section, "", 5)
    assert msg.credential.hash_alg == "SHA-256" and msg.credential.signature == b"\x30\x44signature"
    assert msg.credential.raw == cred_wire
    assert Credential.signed("SHA-256", b"\x30\x44signature", signer_index=5) == msg.credential
    assert encode(msg) == wire
    odd = Credential("HS_VENDOR", b"\x01\x02")
    assert odd.hash_alg is None and Credential.from_bytes(odd.to_bytes()) == odd
    with pytest.raises(HandleProtocolError):
        Credential.from_bytes(u8(1) + cred_wire[1:])             # version must be 0
    with pytest.raises(HandleProtocolError):
        decode(message(1, 1, s(H) + u32(0), credential=cred_wire[:-1]))


def test_message_without_credential_length_is_accepted():
    wire = message(1, 0, s(H) + u32(0) + u32(0))[:-4]
    fixed = wire[:16] + u32(int.from_bytes(wire[16:20], "big") - 4) + wire[20:]
    assert decode(fixed).body == ResolutionRequest(H)


def test_signed_data_per_version():
    hb = b"HEADER+BODY"
    assert signed_data(hb, (2, 5), (2, 5), 1, 2, 3) == hb
    assert signed_data(hb, (2, 7), (2, 10), 0x01020304, 7, 9) == b"\x02\x07" + u32(0x01020304) + u32(7) + u32(9) + hb
    assert signed_data(hb, (2, 10), (2, 11), 1, 7, 9) == b"\x02\x0a\x02\x0b" + u32(1) + u32(7) + u32(9) + hb
    # 2.6: Handle.Net's overlapping writes leave major, minor, 2 bytes of session id, counter, 6 zeros.
    assert signed_data(hb, (2, 6), (2, 6), 0x0A0B0C0D, 7, 0x11223344) == (
        b"\x02\x06\x0a\x0b\x11\x22\x33\x44" + bytes(6) + hb)


@pytest.mark.parametrize(("minor", "ok"), [(0, False), (1, True), (5, True), (11, True), (12, False)])
def test_versions_accepted(minor, ok):
    wire = message(1, 0, s(H) + u32(0) + u32(0), minor=minor, request_id=0xABCD)
    if ok:
        assert decode(wire).version == (2, minor)
    else:
        with pytest.raises(HandleProtocolError) as err:
            decode(wire)
        assert err.value.request_id == 0xABCD and err.value.envelope.version == (2, minor)


def test_errors_carry_request_id_and_op_code():
    wire = message(1, 0, s(H) + u32(5), request_id=99)           # index count past the end
    with pytest.raises(HandleProtocolError) as err:
        decode(wire)
    assert err.value.request_id == 99 and err.value.op_code == OpCode.RESOLUTION
    reply = protocol_error_reply(err.value, now=1000)
    back = decode(encode(reply))
    assert back.response_code == RC.PROTOCOL_ERROR and back.request_id == 99
    assert back.op_code == OpCode.RESOLUTION and back.version == (2, 11)
    with pytest.raises(HandleProtocolError) as short:
        decode(b"\x02\x0b\x00")
    assert short.value.request_id is None and protocol_error_reply(short.value, now=1000) is None


def test_oversized_message_refused_from_the_envelope():
    env = Envelope(request_id=5, message_length=DEFAULT_LIMITS.max_message_bytes + 1).to_bytes()
    with pytest.raises(HandleProtocolError, match="over the limit") as err:
        Envelope.from_bytes(env)
    assert err.value.request_id == 5
    assert Envelope.from_bytes(env, Limits(max_message_bytes=1 << 20)).message_length == 256 * 1024 + 1


def test_compressed_or_encrypted_refused():
    wire = bytearray(message(1, 0, s(H) + u32(0) + u32(0)))
    wire[2] |= 0x40
    with pytest.raises(HandleProtocolError, match="encrypted"):
        decode(bytes(wire))


def test_length_mismatches_refused():
    wire = message(1, 0, s(H) + u32(0) + u32(0))
    for bad in (wire[:-1], wire + b"\x00", wire[:20] + wire[20:40]):
        with pytest.raises(HandleProtocolError):
            decode(bad)
    body_too_long = wire[:20 + 20] + u32(500) + wire[44:]
    with pytest.raises(HandleProtocolError, match="runs past"):
        decode(body_too_long)


def test_encode_refuses_inconsistent_messages():
    with pytest.raises(ValueError, match="does not go with"):
        encode(Message(Header(OpCode.RESOLUTION, RC.SUCCESS), ResolutionRequest(H)))
    with pytest.raises(ValueError, match="request digest"):
        encode(Message(Header(OpCode.RESOLUTION), ResolutionRequest(H), Envelope(),
                       RequestDigest(HashCode.SHA1, bytes(20))))
    with pytest.raises(ValueError):
        encode(Message(Header(OpCode.RESOLUTION), ResolutionRequest(H, (-1,))))


def test_response_rd_flag_follows_the_digest():
    msg = Message(Header(OpCode.RESOLUTION, RC.SUCCESS, OpFlag.RD), ResolutionResponse(H))
    assert OpFlag.RD not in decode(encode(msg)).op_flags
    with_digest = msg.with_(header=msg.header.with_(op_flags=OpFlag(0)),
                            request_digest=RequestDigest(HashCode.SHA256, bytes(32)))
    assert OpFlag.RD in decode(encode(with_digest)).op_flags


def test_make_request_as_a_client():
    req = make_request(ResolutionRequest(H, (), ("URL",)), request_id=42, now=1000, version=(2, 10))
    wire = encode(req)
    back = decode(wire)
    assert back.op_code is OpCode.RESOLUTION and back.request_id == 42 and back.version == (2, 10)
    assert back.header.expiration == 1000 + 43200
    assert back.op_flags == OpFlag.REC | OpFlag.CA | OpFlag.PO
    with pytest.raises(ValueError, match="op_code"):
        make_request(GenericRequest("0.NA/88.118.8"), request_id=1, now=0)
    home = make_request(GenericRequest("0.NA/88.118.8"), request_id=1, now=0, op_code=OpCode.HOME_PREFIX)
    assert decode(encode(home)).body == GenericRequest("0.NA/88.118.8")
