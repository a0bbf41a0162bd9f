"""Requests captured from real Handle clients: decode, re-encode, answer."""

import hashlib

import pytest

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, HEADER_SIZE, EmptyResponse, Envelope, ErrorResponse, GetSiteInfoRequest,
                             GetSiteInfoResponse, HashCode, OpCode, OpFlag, Reassembler, ResolutionRequest,
                             ResolutionResponse, decode, decode_message, encode, make_reply)
from protocol.values import HandleValue, Reference

from .wirebuild import FIXTURES, fixture, hs_admin, hs_site, hs_vlist

# Never the real clock: the fixtures expire near 2026-11-27.
NOW = 1_790_000_000
STD = OpFlag.REC | OpFlag.CA | OpFlag.PO
PRODUCT = "88.118.8/product-123"

# file: (version, suggested version as sent, opCode, request id, opFlags, handle, expiration, site serial)
EXPECTED = {
    "caict-idsdk-2.0.3_tcp_get-site-info.req.bin": ((2, 3), (2, 10), OpCode.GET_SITE_INFO, 0x4321866E, STD, "/",
                                                    0x6B0AA9A4, 0xFFFF),
    "caict-idsdk-2.0.3_tcp_resolve-found.req.bin": ((2, 3), (2, 10), OpCode.RESOLUTION, 0x7F779C68, OpFlag(0),
                                                    PRODUCT, 0x6B0AA9A4, 0xFFFF),
    "caict-idsdk-2.0.3_tcp_resolve-missing.req.bin": ((2, 3), (2, 10), OpCode.RESOLUTION, 0x1718DE8C, OpFlag(0),
                                                      "88.118.8/nope", 0x6B0AA9AA, 0xFFFF),
    "handlenet-8.1.4_tcp_resolve-v2.10.req.bin": ((2, 10), (2, 10), OpCode.RESOLUTION, 0x327CBA46, STD, PRODUCT,
                                                  0x6B0AAA31, 0xFFFF),
    "handlenet-8.1.4_tcp_resolve.req.bin": ((2, 3), (2, 10), OpCode.RESOLUTION, 0x79496D66, STD, PRODUCT,
                                            0x6B0AAA1D, 0xFFFF),
    "handlenet-8.1.4_udp_resolve.req.bin": ((2, 3), (2, 10), OpCode.RESOLUTION, 0x48E748A2, STD, PRODUCT,
                                            0x6B0AAA1E, 0xFFFF),
    "node-handle-protocol_tcp_resolve-v2.1.req.bin": ((2, 1), (0, 0), OpCode.RESOLUTION, 0x6B0A0140, OpFlag(0),
                                                      PRODUCT, 0x6B0A0398, 0xFFFF),
    "py-handleclient_tcp_resolve-v2.11.req.bin": ((2, 11), (2, 11), OpCode.RESOLUTION, 0, STD, PRODUCT,
                                                  0x6B0A2B28, 1),
}


def test_every_fixture_is_in_the_table():
    assert sorted(p.name for p in FIXTURES.glob("*.bin")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_decodes(name):
    version, suggested, op, request_id, flags, handle, expiration, serial = EXPECTED[name]
    msg = decode(fixture(name))
    assert msg.version == version
    assert (msg.envelope.suggested_major, msg.envelope.suggested_minor) == suggested
    assert msg.envelope.suggested_version == (suggested if suggested != (0, 0) else version)
    assert msg.op_code is op
    assert msg.request_id == request_id
    assert msg.op_flags == flags
    assert msg.response_code == 0 and not msg.is_response
    assert msg.header.expiration == expiration
    assert msg.header.site_serial == serial
    assert msg.envelope.session_id == 0 and msg.envelope.sequence == 0
    assert not (msg.envelope.truncated or msg.envelope.compressed or msg.envelope.encrypted)
    assert msg.credential is None and msg.request_digest is None
    if op is OpCode.RESOLUTION:
        assert msg.body == ResolutionRequest(handle)
    else:
        assert msg.body == GetSiteInfoRequest(handle)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_reencodes_byte_for_byte(name):
    data = fixture(name)
    assert encode(decode(data)) == data


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_read_as_tcp_does(name):
    """Envelope first, then exactly message_length bytes."""
    data = fixture(name)
    env = Envelope.from_bytes(data[:ENVELOPE_SIZE])
    assert ENVELOPE_SIZE + env.message_length == len(data)
    assert decode_message(env, data[ENVELOPE_SIZE:]) == decode(data)


def _values() -> tuple[HandleValue, ...]:
    return (
        HandleValue(1, "URL", b"https://example.com/p/123", timestamp=1_700_000_000),
        HandleValue(2, "EMAIL", b"ops@acme.example", ttl=3600, ttl_absolute=False, permissions=0x0E),
        HandleValue(100, "HS_ADMIN", hs_admin(0x0FFF, "0.NA/88.118.8", 200), permissions=0x0E),
        HandleValue(101, "HS_VLIST", hs_vlist((("88.118.8/ADMIN", 300), ("0.NA/88.118", 200))),
                    references=(Reference("88.118.8/ref", 1),)),
    )


def _reply_body(msg):
    if msg.op_code is OpCode.GET_SITE_INFO:
        return GetSiteInfoResponse(hs_site()), RC.SUCCESS
    if msg.body.handle.endswith("/nope"):
        return ErrorResponse("handle not found"), RC.HANDLE_NOT_FOUND
    return ResolutionResponse(msg.body.handle, _values()), RC.SUCCESS


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reply_in_the_request_version_decodes_back(name):
    request = decode(fixture(name))
    body, rc = _reply_body(request)
    reply = make_reply(request, body, response_code=rc, now=NOW)
    wire = encode(reply)
    back = decode(wire)
    assert back.version == request.version
    assert back.envelope.suggested_version == (2, 11)
    assert back.request_id == request.request_id
    assert back.envelope.session_id == request.envelope.session_id
    assert back.op_code is request.op_code
    assert back.response_code == rc
    assert back.body == body
    assert back.request_digest is None                     # no fixture asked for one
    assert not back.expired(NOW) and back.expired(NOW + 43201)
    assert back.op_flags == request.op_flags               # REC/CA/PO carried over
    assert back == reply.with_(envelope=reply.envelope.with_(message_length=len(wire) - ENVELOPE_SIZE))


@pytest.mark.parametrize(("name", "alg", "size"), [
    ("handlenet-8.1.4_tcp_resolve.req.bin", HashCode.SHA1, 20),          # reply 2.3: SHA-1
    ("handlenet-8.1.4_tcp_resolve-v2.10.req.bin", HashCode.SHA256, 32),  # reply 2.10: SHA-256
    ("node-handle-protocol_tcp_resolve-v2.1.req.bin", HashCode.SHA1, 20),
])
def test_reply_digest_is_of_the_bytes_the_client_sent(name, alg, size):
    data = bytearray(fixture(name))
    data[ENVELOPE_SIZE + 9] |= 0x80            # opFlags at header offset 8; RD = 0x00800000
    request = decode(bytes(data))
    assert OpFlag.RD in request.op_flags
    wire = encode(make_reply(request, ResolutionResponse(PRODUCT), now=NOW))
    reply = decode(wire)
    body_len = int.from_bytes(data[ENVELOPE_SIZE + 20:ENVELOPE_SIZE + 24], "big")
    sent = bytes(data[ENVELOPE_SIZE:ENVELOPE_SIZE + HEADER_SIZE + body_len])
    name_ = {HashCode.SHA1: "sha1", HashCode.SHA256: "sha256"}[alg]
    assert reply.request_digest.alg == alg
    assert reply.request_digest.digest == hashlib.new(name_, sent).digest()
    assert OpFlag.RD in reply.op_flags
    # On the wire: the digest type byte and digest open the body.
    start = ENVELOPE_SIZE + HEADER_SIZE
    assert wire[start] == alg and wire[start + 1:start + 1 + size] == reply.request_digest.digest
    assert reply.request_digest.matches(request)


def test_udp_fixture_is_one_datagram():
    data = fixture("handlenet-8.1.4_udp_resolve.req.bin")
    out = Reassembler().feed(("127.0.0.1", 40000), data, now=0.0)
    assert out == data
    assert decode(out).body == ResolutionRequest(PRODUCT)


def test_delete_reply_is_empty_body():
    request = decode(fixture("py-handleclient_tcp_resolve-v2.11.req.bin"))
    reply = make_reply(request, EmptyResponse(), op_code=OpCode.DELETE_HANDLE, now=NOW)
    wire = encode(reply)
    assert len(wire) == ENVELOPE_SIZE + HEADER_SIZE + 4           # no body, empty credential
    assert decode(wire).body == EmptyResponse()
