"""Session setup (400), session key exchange (402) and IDIS login (2000/2001)
bodies, against what Handle.Net 9.3.1, the Handle.Net 8.1.4 library and the
CAICT SDK put on the wire; the server signatures of the captured replies
checked against the server key the same captures publish in HS_SITE."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, HEADER_SIZE, Challenge, CreateHandleRequest, DeleteHandleRequest,
                             DHPublicKey, EmptyResponse, Envelope, GenericRequest, HandleProtocolError, KeyExchange,
                             LoginRequest, OpCode, OpFlag, PasswordLoginRequest, Reassembler, RequestDigest,
                             ResolutionResponse, SessionExchangeKeyRequest,
                             SessionSetupRequest, SessionSetupResponse, body_type, decode, encode, header_and_body,
                             load_public_key, make_reply, make_request, split_datagrams, verify_signature)
from protocol.handle.keys import OAKLEY_GROUP_2_G, OAKLEY_GROUP_2_P
from protocol.handle.session import MAX_KEY_BYTES, MAX_PADDING, PADDING
from protocol.valuetypes import SiteInfo

from .wirebuild import blob, s, u16, u32

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SERVER = FIXTURES / "handlenet-9.3.1-server"          # copied from ../shared/fixtures/handlenet-9.3.1-server
CLIENTS = FIXTURES / "handle-wire-session"            # two files of ../shared/fixtures/handle-wire
NOW = 1_790_000_000


def cap(number: str) -> bytes:
    """A Handle.Net 9.3.1 capture by its number."""
    (path,) = SERVER.glob(f"{number}_*.bin")
    return path.read_bytes()


def udp_message(*numbers: str) -> bytes:
    """A multi-datagram reply put together as Handle.Net's client does:
    packet k's message bytes at offset k * 492, the envelope of packet 0."""
    packets = [cap(n) for n in numbers]
    env = Envelope.from_bytes(packets[0])
    message = bytearray(env.message_length)
    for packet in packets:
        seq = Envelope.from_bytes(packet).sequence
        message[seq * 492:seq * 492 + len(packet) - ENVELOPE_SIZE] = packet[ENVELOPE_SIZE:]
    return env.with_(flags=env.flags & ~0x20).to_bytes() + bytes(message)


def server_key(number: str = "017") -> bytes:
    """The server public key (Handle encoding) of an HS_SITE capture."""
    (server,) = SiteInfo.decode(decode(cap(number)).body.site).servers
    return server.public_key


SINGLE = sorted(p.name[:3] for p in SERVER.glob("*.bin") if "_pkt" not in p.name and "_cont_" not in p.name)
SETS = {"006": ("006", "007", "008", "009"), "019": ("019", "020"), "034": ("034", "035")}


# ------------------------------------------------------------------ every capture decodes

def test_the_fixture_folder_is_whole():
    assert len(list(SERVER.glob("*.bin"))) == 45 and (SERVER / "README.md").exists()


@pytest.mark.parametrize("number", SINGLE + sorted(SETS))
def test_every_capture_decodes_and_reencodes(number):
    data = udp_message(*SETS[number]) if number in SETS else cap(number)
    msg = decode(data)
    assert type(msg.body).__name__ != "RawBody"
    assert encode(msg) == data


@pytest.mark.parametrize("first", sorted(SETS))
def test_reassembler_and_splitter_agree_with_handle_net(first):
    packets = [cap(n) for n in SETS[first]]
    r = Reassembler()
    outs = [r.feed(("127.0.0.1", 2645), p, now=0.0) for p in packets]
    assert outs[:-1] == [None] * (len(packets) - 1)
    assert outs[-1] == udp_message(*SETS[first])
    assert split_datagrams(outs[-1]) == packets


# ------------------------------------------------------------------ session setup

@pytest.mark.parametrize(("data", "identity"), [
    (cap("018"), "0.NA/88.118"),
    (cap("033"), "0.NA/88.118"),
    ((CLIENTS / "handlenet-8.1.4_tcp_session-setup-400.req.bin").read_bytes(), "88.118.8/ADMIN"),
])
def test_session_setup_request_from_handle_net(data, identity):
    msg = decode(data)
    body = msg.body
    assert msg.op_code is OpCode.SESSION_SETUP and msg.response_code == 0
    assert msg.op_flags == OpFlag.CT | OpFlag.REC | OpFlag.CA | OpFlag.PO | OpFlag.RD
    assert type(body) is SessionSetupRequest
    assert (body.mode, body.timeout, body.identity_handle, body.identity_index) == (KeyExchange.DH, 86400,
                                                                                      identity, 300)
    assert body.mode is KeyExchange.DH
    assert (body.exchange_key_handle, body.exchange_key_index) == ("", 0)
    assert body.padding == PADDING == b"\x00\x00"
    key = load_public_key(body.public_key)
    assert isinstance(key, DHPublicKey)
    assert (key.p, key.g) == (OAKLEY_GROUP_2_P, OAKLEY_GROUP_2_G)        # RFC 2409 group 2
    # Handle.Net counted the u16 mode as four bytes: its body length includes the two zeros.
    body_len = int.from_bytes(data[ENVELOPE_SIZE + 20:ENVELOPE_SIZE + 24], "big")
    raw_body = data[ENVELOPE_SIZE + HEADER_SIZE:ENVELOPE_SIZE + HEADER_SIZE + body_len]
    assert raw_body.endswith(b"\x00\x00") and body.to_bytes() == raw_body
    assert SessionSetupRequest.from_bytes(raw_body) == body
    # A fresh body with the same fields writes Handle.Net's bytes.
    fresh = SessionSetupRequest(KeyExchange.DH, 86400, identity, 300, body.public_key)
    assert fresh.to_bytes() == raw_body
    assert encode(msg) == data


@pytest.mark.parametrize(("request_no", "reply", "session_id"), [("018", ("019", "020"), 4),
                                                                 ("033", ("034", "035"), 5)])
def test_session_setup_reply_from_handle_net(request_no, reply, session_id):
    request = decode(cap(request_no))
    data = udp_message(*reply)
    msg = decode(data)
    assert msg.op_code is OpCode.SESSION_SETUP and msg.response_code == RC.SUCCESS
    assert msg.envelope.session_id == session_id and msg.request_id == request.request_id
    assert type(msg.body) is SessionSetupResponse
    assert msg.body.mode is KeyExchange.DH and msg.body.padding == b"\x00\x00"
    # From 2.4: u32 cipher (3 = AES, Handle.Net's default) + the server's DH key in the client's group.
    assert msg.body.data[:4] == u32(3)
    server_dh = load_public_key(msg.body.data[4:])
    client_dh = load_public_key(request.body.public_key)
    assert (server_dh.p, server_dh.g) == (client_dh.p, client_dh.g) and server_dh.y != client_dh.y
    # The request digest is of the request as we re-encode it: its two zero bytes included.
    assert msg.request_digest.matches(request)
    assert msg.request_digest == RequestDigest.of(request, msg.request_digest.alg)
    # Signed by the server (HS_SIGNED, SHA-256, counter 0) over the session id the reply creates.
    cred = msg.credential
    assert (cred.type, cred.signer_handle, cred.signer_index, cred.hash_alg) == ("HS_SIGNED", "", 0, "SHA-256")
    assert verify_signature(server_key("017"), msg)
    assert verify_signature(server_key("002"), msg)           # the same key in every HS_SITE
    assert not verify_signature(server_key(), msg.with_(envelope=msg.envelope.with_(session_id=session_id + 1)))
    body = SessionSetupResponse(KeyExchange.DH, msg.body.data)
    assert not verify_signature(server_key(), msg.with_(body=SessionSetupResponse(KeyExchange.DH,
                                                                                  body.data[:-1] + b"\x03")))


@pytest.mark.parametrize(("site", "number"), [("013", "015"), ("017", "044"), ("002", "015")])
def test_signed_replies_verify_with_the_hs_site_key(site, number):
    msg = decode(cap(number))
    assert msg.credential.type == "HS_SIGNED" and msg.credential.hash_alg == "SHA-256"
    assert verify_signature(server_key(site), msg)
    tampered = msg.with_(header=msg.header.with_(expiration=msg.header.expiration + 1))
    assert not verify_signature(server_key(site), tampered)


def test_unsigned_reply_does_not_verify():
    assert not verify_signature(server_key(), decode(cap("004")))


# ------------------------------------------------------------------ inside a session

MACS = [("021", 4, 1, CreateHandleRequest), ("025", 4, 2, None), ("027", 4, 3, None), ("031", 4, 4, None),
        ("040", 4, 5, DeleteHandleRequest), ("036", 5, 1, DeleteHandleRequest)]


@pytest.mark.parametrize(("number", "session_id", "counter", "cls"), MACS)
def test_requests_in_a_session_carry_hs_mac(number, session_id, counter, cls):
    data = cap(number)
    msg = decode(data)
    assert msg.envelope.session_id == session_id and msg.version == (2, 10)
    if cls is not None:
        assert type(msg.body) is cls
    cred = msg.credential
    assert (cred.type, cred.version, cred.flags, cred.signer_handle) == ("HS_MAC", 0, 0, "")
    assert cred.signer_index == counter                 # Handle.Net's session counter
    assert cred.hash_alg == "HMAC-SHA256" and len(cred.signature) == 32
    body_len = int.from_bytes(data[ENVELOPE_SIZE + 20:ENVELOPE_SIZE + 24], "big")
    assert header_and_body(msg) == data[ENVELOPE_SIZE:ENVELOPE_SIZE + HEADER_SIZE + body_len]


def test_challenge_in_a_session_digests_the_request():
    request, challenge = decode(cap("021")), decode(cap("022"))
    assert type(challenge.body) is Challenge and challenge.response_code == RC.AUTHENTICATION_NEEDED
    assert challenge.envelope.session_id == 4
    assert challenge.request_digest.matches(request)


# ------------------------------------------------------------------ login

def test_login_2001_from_the_caict_sdk():
    data = (CLIENTS / "caict-idsdk-2.0.3_tcp_login-key-2001.req.bin").read_bytes()
    msg = decode(data)
    assert msg.op_code is OpCode.LOGIN_KEY and msg.op_flags == OpFlag.RD
    assert msg.body == LoginRequest("88.118.8/ADMIN", 300)
    assert encode(msg) == data
    again = make_request(LoginRequest("88.118.8/ADMIN", 300), request_id=msg.request_id, now=0,
                         op_code=OpCode.LOGIN_KEY, op_flags=OpFlag.RD, version=(2, 3), suggested=(2, 10))
    assert header_and_body(again)[HEADER_SIZE:] == msg.body.to_bytes() == s("88.118.8/ADMIN") + u32(300)
    ok = decode(encode(make_reply(msg, EmptyResponse(), now=NOW)))
    assert type(ok.body) is EmptyResponse and ok.request_digest.matches(msg)


def test_key_login_defaults_to_the_sdk_index_and_password_login_reads_as_the_caict_sdk_writes_it():
    msg = make_request(LoginRequest("a/b"), request_id=1, now=0)
    back = decode(encode(msg))
    assert back.op_code is OpCode.LOGIN_KEY and back.body == LoginRequest("a/b", 0xFFFFFFFF)   # the SDK's -1
    # CAICT SDK 2.0.3 `login(user, password)`: a resolution request's layout, the password as its one type
    wire = s("88.118.8/ADMIN") + u32(0) + u32(1) + s("enterprise-secret-0001")
    login = PasswordLoginRequest.from_bytes(wire)
    assert login == PasswordLoginRequest("88.118.8/ADMIN", b"enterprise-secret-0001") and login.to_bytes() == wire
    msg = decode(encode(make_request(login, request_id=2, now=0)))
    assert msg.op_code is OpCode.LOGIN_PASSWORD and msg.body == login
    ok = decode(encode(make_reply(msg, ResolutionResponse("88.118.8/ADMIN", ()), now=NOW)))
    assert ok.body == ResolutionResponse("88.118.8/ADMIN", ())         # what LoginIDSystemIdResponse reads


# ------------------------------------------------------------------ bodies

DH_KEY = b"\x00\x00\x00\x0aDH_PUB_KEY\x00\x00" + blob(b"\x05") + blob(b"\x17") + blob(b"\x02")

BODIES = [
    (SessionSetupRequest(KeyExchange.DH, 600, "0.NA/88.118", 300, DH_KEY),
     u16(4) + u32(600) + s("0.NA/88.118") + u32(300) + blob(DH_KEY) + b"\x00\x00"),
    (SessionSetupRequest(KeyExchange.CIPHER_CLIENT, 1, "a/b", 7, b"rsa"),
     u16(1) + u32(1) + s("a/b") + u32(7) + blob(b"rsa") + b"\x00\x00"),
    (SessionSetupRequest(KeyExchange.CIPHER_HDL, 1, "a/b", 7, exchange_key_handle="a/key", exchange_key_index=9),
     u16(3) + u32(1) + s("a/b") + u32(7) + s("a/key") + u32(9) + b"\x00\x00"),
    (SessionSetupRequest(KeyExchange.CIPHER_SERVER, 1, "", 0xFFFFFFFF),
     u16(2) + u32(1) + s("") + u32(0xFFFFFFFF) + b"\x00\x00"),
    (SessionSetupRequest(KeyExchange.NONE, 0, "", 0, padding=b""), u16(0) + u32(0) + s("") + u32(0)),
    (SessionSetupRequest(9, 0, "", 0, padding=b"\x01"), u16(9) + u32(0) + s("") + u32(0) + b"\x01"),
    (SessionSetupResponse(KeyExchange.DH, u32(3) + DH_KEY), u16(4) + blob(u32(3) + DH_KEY) + b"\x00\x00"),
    (SessionSetupResponse(KeyExchange.CIPHER_SERVER, b"key", padding=b""), u16(2) + blob(b"key")),
    (SessionExchangeKeyRequest(b"\x01" * 128), blob(b"\x01" * 128)),
    (LoginRequest("88.118.8/ADMIN", 300), s("88.118.8/ADMIN") + u32(300)),
]


@pytest.mark.parametrize(("body", "wire"), BODIES)
def test_body_round_trip(body, wire):
    assert body.to_bytes() == wire
    assert type(body).from_bytes(wire) == body


def test_unknown_mode_is_kept():
    body = SessionSetupRequest.from_bytes(u16(9) + u32(0) + s("") + u32(0))
    assert body.mode == 9 and not isinstance(body.mode, KeyExchange) and body.padding == b""


def test_body_without_handle_net_padding_keeps_its_bytes():
    wire = u16(4) + u32(600) + s("a/b") + u32(300) + blob(DH_KEY)            # a client that counts right
    body = SessionSetupRequest.from_bytes(wire)
    assert body.padding == b"" and body.to_bytes() == wire


@pytest.mark.parametrize(("body", "wire"), BODIES)
def test_truncated_bodies_are_refused(body, wire):
    keep = len(getattr(body, "padding", b""))
    for cut in range(len(wire) - keep):
        with pytest.raises(HandleProtocolError):
            type(body).from_bytes(wire[:cut])


@pytest.mark.parametrize("wire", [
    u16(4) + u32(1) + s("a/b") + u32(1) + u32(MAX_KEY_BYTES + 1) + bytes(MAX_KEY_BYTES + 1),
    u16(1) + u32(1) + s("a/b") + u32(1) + u32(0xFFFFFFFF),
    u16(4) + u32(1) + s("a/b") + u32(1) + blob(b"k") + bytes(MAX_PADDING + 1),
    u16(2) + u32(1) + u32(256) + b"x" * 256 + u32(1),                         # identity over 255 bytes
    u16(3) + u32(1) + s("a/b") + u32(1) + u32(1000) + b"a/b",
    u16(3) + u32(1) + s("a/b") + u32(1) + s("\u00e9").replace(b"\xc3\xa9", b"\xff\xfe") + u32(1),
])
def test_oversized_or_lying_setup_requests_are_refused(wire):
    with pytest.raises(HandleProtocolError):
        SessionSetupRequest.from_bytes(wire)


@pytest.mark.parametrize(("cls", "wire"), [
    (SessionSetupResponse, u16(4) + u32(MAX_KEY_BYTES + 1) + bytes(MAX_KEY_BYTES + 1)),
    (SessionSetupResponse, u16(4) + blob(b"x") + bytes(MAX_PADDING + 1)),
    (SessionExchangeKeyRequest, u32(MAX_KEY_BYTES + 1) + bytes(MAX_KEY_BYTES + 1)),
    (SessionExchangeKeyRequest, blob(b"key") + b"\x00"),
    (SessionExchangeKeyRequest, b""),
    (LoginRequest, s("a/b") + u32(1) + b"\x00"),
    (LoginRequest, u32(300) + bytes(300) + u32(1)),
    (PasswordLoginRequest, s("a/b") + u32(0) + u32(2) + s("one") + s("two")),      # one password only
    (PasswordLoginRequest, s("a/b") + u32(0) + u32(1) + u32(MAX_KEY_BYTES + 1)),   # a 16 KiB password
    (PasswordLoginRequest, s("a/b") + u32(0xFFFFFFFF)),                            # 4 billion indexes
])
def test_other_bad_bodies_are_refused(cls, wire):
    with pytest.raises(HandleProtocolError):
        cls.from_bytes(wire)


def test_encoders_refuse_what_does_not_fit():
    for body in (SessionSetupRequest(0x10000, 0, "", 0), SessionSetupRequest(KeyExchange.DH, -1, "", 0),
                 SessionSetupRequest(KeyExchange.DH, 0, "", 0, bytes(MAX_KEY_BYTES + 1)),
                 SessionSetupResponse(KeyExchange.DH, bytes(MAX_KEY_BYTES + 1)),
                 SessionExchangeKeyRequest(bytes(MAX_KEY_BYTES + 1)), LoginRequest("a/b", 1 << 32)):
        with pytest.raises(ValueError):
            body.to_bytes()


@pytest.mark.parametrize(("op", "rc", "cls"), [
    (400, 0, SessionSetupRequest), (400, 1, SessionSetupResponse), (401, 0, GenericRequest),
    (401, 1, EmptyResponse), (402, 0, SessionExchangeKeyRequest), (402, 1, EmptyResponse),
    (2000, 0, PasswordLoginRequest), (2000, 1, ResolutionResponse), (2001, 0, LoginRequest), (2001, 1, EmptyResponse),
    (400, 402, Challenge), (2001, 402, Challenge),
])
def test_registered_bodies(op, rc, cls):
    assert body_type(op, rc) is cls


def test_session_setup_reply_built_here_decodes():
    request = decode(cap("018"))
    reply = make_reply(request, SessionSetupResponse(KeyExchange.DH, u32(3) + DH_KEY), now=NOW)
    assert reply.response_code == RC.SUCCESS and reply.request_digest.matches(request)
    back = decode(encode(reply.with_(envelope=reply.envelope.with_(session_id=7))))
    assert back.body == reply.body and back.envelope.session_id == 7


# ------------------------------------------------------------------ fuzz

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.sampled_from([SessionSetupRequest, SessionSetupResponse, SessionExchangeKeyRequest, LoginRequest]),
       st.binary(max_size=200))
def test_random_bodies_parse_or_refuse(cls, data):
    try:
        body = cls.from_bytes(data)
    except HandleProtocolError:
        return
    assert body.to_bytes() == data


@FUZZ
@given(st.sampled_from([SessionSetupRequest, SessionSetupResponse]), st.data())
def test_mutated_setup_bodies_parse_or_refuse(cls, data):
    wire = bytearray(data.draw(st.sampled_from([w for b, w in BODIES if type(b) is cls])))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    try:
        body = cls.from_bytes(bytes(wire))
    except HandleProtocolError:
        return
    assert body.to_bytes() == bytes(wire)


@FUZZ
@given(st.sampled_from([(400, 0), (400, 1), (402, 0), (2000, 0), (2001, 0)]), st.binary(max_size=120))
def test_random_messages_of_the_new_opcodes_parse_or_refuse(codes, body):
    op, rc = codes
    header = u32(op) + u32(rc) + u32(0) + u16(0xFFFF) + b"\x00\x00" + u32(0) + u32(len(body))
    message = header + body + u32(0)
    data = Envelope(2, 10, message_length=len(message)).to_bytes() + message
    try:
        msg = decode(data)
    except HandleProtocolError:
        return
    assert encode(msg) == data


@FUZZ
@given(st.builds(SessionSetupRequest, st.sampled_from(list(KeyExchange)), st.integers(0, 0xFFFFFFFF),
                 st.text(max_size=20), st.integers(0, 0xFFFFFFFF), st.binary(max_size=40),
                 st.text(max_size=20), st.integers(0, 0xFFFFFFFF), st.binary(max_size=4)))
def test_setup_requests_round_trip(body):
    back = SessionSetupRequest.from_bytes(body.to_bytes())
    assert back.to_bytes() == body.to_bytes()
    if body.mode in (KeyExchange.CIPHER_CLIENT, KeyExchange.DH):
        assert back.public_key == body.public_key
    if body.mode == KeyExchange.CIPHER_HDL:
        assert (back.exchange_key_handle, back.exchange_key_index) == (body.exchange_key_handle,
                                                                        body.exchange_key_index)
