"""Administration as the SDKs do it: sessions (opCodes 400-402), IDIS login
(2000/2001) and signed replies, against a live node over TCP and HTTP."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from protocol.codes import RC
from protocol.handle import (AddValueRequest, ChallengeAnswerRequest, CreateHandleRequest, Credential, GenericRequest,
                             HandleProtocolError, OpCode, OpFlag, ResolutionRequest, ResolutionResponse, decode, encode,
                             make_request)
from protocol.handle.session import KeyExchange, LoginRequest, PasswordLoginRequest
from protocol.values import HandleValue
from protocol.valuetypes import AdminRef
from registry import provision
from resolver import serverkey
from resolver.hs.client import HandleResponseError, HandleTransportError, PublicKeyAuth, SecretKeyAuth

from .conftest import ENT, NOW, hs_node

H = "88.118.8/SESSION-1"
URL = HandleValue(1, "URL", b"https://acme.example/s/1")
ADMIN = HandleValue(100, "HS_ADMIN", AdminRef("88.118.8/ADMIN", 300).encode())
DESC = HandleValue(3, "DESC", b"made in a session")


def pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def admin_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def key_identity(hs, key) -> PublicKeyAuth:
    """A key identity of 88.118.8: the RSA key at 301:88.118.8/ADMIN."""
    index, _admin_index = await provision.add_public_key(hs.store, "88.118.8", pem(key), 301, actor="test")
    return PublicKeyAuth("88.118.8/ADMIN", index, key)


async def admin_cycle(hs, client, auth=None) -> None:
    """create / add / modify / remove / delete, each checked in the store."""
    await client.create_handle(H, [URL, ADMIN], auth)
    await client.add_values(H, [DESC], auth)
    assert [v.index for v in (await hs.store.get_handle(H)).values] == [1, 3, 100]
    await client.modify_values(H, [URL.with_(data=b"https://acme.example/s/1-v2")], auth)
    await client.remove_values(H, [3], auth)
    record = await hs.store.get_handle(H)
    assert [(v.index, v.data) for v in record.values][:1] == [(1, b"https://acme.example/s/1-v2")]
    assert [v.index for v in record.values] == [1, 100]
    await client.delete_handle(H, auth)
    assert await hs.store.get_handle(H) is None


def verify_independently(wire: bytes, site_key: bytes) -> None:
    """An HS_SIGNED reply checked with `cryptography` alone: the RSA key read
    as HS_SITE encodes it (``RSA_PUB_KEY``, u16 flags, e, n), the signed bytes
    as Handle.Net's ``AbstractMessage.signMessage`` lays them out from 2.8:
    version, suggested version, session id, request id, counter, then header
    and body."""
    at = 4 + struct.unpack_from(">I", site_key, 0)[0] + 2
    numbers = []
    for _ in range(2):
        (length,) = struct.unpack_from(">I", site_key, at)
        numbers.append(int.from_bytes(site_key[at + 4:at + 4 + length], "big"))
        at += 4 + length
    public = rsa.RSAPublicNumbers(*numbers).public_key()
    major, minor, suggested = wire[0], wire[1], ((wire[2] & 0x03) or wire[0], wire[3])
    assert (major, minor) >= (2, 8)
    session_id, request_id = struct.unpack_from(">II", wire, 4)
    (body_length,) = struct.unpack_from(">I", wire, 20 + 20)
    header_and_body = wire[20:20 + 24 + body_length]
    credential = Credential.from_bytes(wire[20 + 24 + body_length + 4:])
    assert credential.type == "HS_SIGNED" and credential.hash_alg == "SHA-256"
    signed = bytes([major, minor, *suggested]) + struct.pack(">III", session_id, request_id, credential.signer_index)
    public.verify(credential.signature, signed + header_and_body, padding.PKCS1v15(), hashes.SHA256())


# ------------------------------------------------------------------ the server key and signed replies

async def test_certified_replies_verify_against_the_hs_site_key_with_cryptography_alone(hs):
    async with hs.client() as client:
        (server,) = (await client.site_info()).servers
        assert server.public_key[4:15] == b"RSA_PUB_KEY"
        cases = ((ResolutionRequest("88.118.8/product-123"), None, RC.SUCCESS),
                 (ResolutionRequest("88.118.8/nope"), None, RC.HANDLE_NOT_FOUND),
                 (GenericRequest("/"), OpCode.HOME_PREFIX, RC.OPERATION_NOT_SUPPORTED))    # a refusal is signed too
        for request_id, (body, op, code) in enumerate(cases, 7):
            for version in ((2, 10), (2, 3)):     # 2.3 suggesting 2.10, as the CAICT SDK and Handle.Net 8 send
                request = make_request(body, request_id=request_id, now=NOW, op_code=op, version=version,
                                       op_flags=OpFlag.CT | OpFlag.PO | OpFlag.REC, suggested=(2, 10))
                (reply,) = await client.exchange(encode(request), request_id)
                assert reply.response_code == code and OpFlag.CT in reply.op_flags
                assert reply.version == (2, 10)    # answered in the suggested version, as Handle.Net 9 does
                verify_independently(encode(reply), server.public_key)
        plain = await client.send(client.request(ResolutionRequest("88.118.8/product-123")))
        assert plain[0].credential is None                   # no CT: no signature, the fast path
    assert await hs.metric("idnode_hs_signed_replies_total") == 6


async def test_the_server_key_lives_beside_the_node_key_and_rotates(hs):
    home = Path(hs.running.node.settings.home)
    key_file = home / "server.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")       # PKCS#8
    assert serverkey.load(home).public_key().public_numbers() == \
        hs.service.server_key.public_key().public_numbers()
    assert serverkey.load_or_create(home).private_numbers() == hs.service.server_key.private_numbers()
    rotated = serverkey.rotate(home)
    assert serverkey.load(home).private_numbers() == rotated.private_numbers() != \
        hs.service.server_key.private_numbers()
    key_file.write_bytes(b"not a key")
    with pytest.raises(serverkey.ServerKeyError, match="not an unencrypted PEM private key"):
        serverkey.load(home)


# ------------------------------------------------------------------ sessions

@pytest.mark.parametrize("transport", ["tcp", "http"])
@pytest.mark.parametrize("exchange", [KeyExchange.DH, KeyExchange.CIPHER_CLIENT, KeyExchange.CIPHER_SERVER])
async def test_a_whole_administration_inside_a_session(hs, transport, exchange):
    async with hs.client(transport, certify=True) as client:
        session = await client.setup_session(ENT, key_exchange=exchange)
        assert session.id and len(session.key) in (16, 32)
        await admin_cycle(hs, client, ENT)
        # every reply MAC'd with the session key, each under a counter of its own (the 402 included)
        assert sorted(session.replies) == list(range(1, 7))     # 402, create, add, modify, remove, delete
        await client.terminate_session()
    # one challenge proved the session; every later change rode on it
    assert await hs.metric("idnode_requests_total", protocol=f"hs-{transport}", operation="challenge_response",
                           result="success") == 1
    assert await hs.metric("idnode_requests_total", protocol=f"hs-{transport}", operation="session_setup",
                           result="success") == 1
    audit = [(e.actor, e.operation) for e in await hs.store.audit() if e.handle == H]
    assert [a for a, _ in audit] == ["300:88.118.8/ADMIN"] * 5


async def test_a_session_keyed_to_a_public_key_named_by_handle(hs, admin_key):
    """CIPHER_HDL: the client names the handle value holding its RSA key; the
    node encrypts the session key to it, so only the key's holder can use
    the session."""
    auth = await key_identity(hs, admin_key)                  # 301:88.118.8/ADMIN holds the public half
    async with hs.client("tcp", certify=True) as client:
        await client.setup_session(auth, key_exchange=KeyExchange.CIPHER_HDL, exchange_key=admin_key,
                                   exchange_key_ref=("88.118.8/ADMIN", 301))
        await admin_cycle(hs, client, auth)
    async with hs.client("tcp", certify=True) as client:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        try:                                                  # the session key is not encrypted to this key:
            await client.setup_session(auth, key_exchange=KeyExchange.CIPHER_HDL, exchange_key=other,
                                       exchange_key_ref=("88.118.8/ADMIN", 301))
        except HandleProtocolError:
            pass                                              # ... it does not decrypt,
        else:                                                 # ... or decrypts to noise, which MACs nothing:
            try:                                              # the node refuses, and its refusal, MACed with
                await refused(client.create_handle(H, [URL, ADMIN], auth), RC.AUTHENTICATION_FAILED)
            except HandleTransportError as exc:               # the real key, does not verify with the noise
                assert "MAC does not verify" in str(exc)
            assert await hs.running.store.get_handle(H) is None          # either way, nothing was written
        client.session = None
        with pytest.raises(HandleResponseError) as err:       # a value that is no public key
            await client.setup_session(auth, key_exchange=KeyExchange.CIPHER_HDL, exchange_key=other,
                                       exchange_key_ref=("88.118.8/ADMIN", 100))
        assert err.value.code == RC.INVALID_SESSION_SETUP_REQUEST


async def test_an_encrypted_session_with_a_key_identity(hs, admin_key):
    auth = await key_identity(hs, admin_key)
    async with hs.client("tcp", certify=True) as client:
        await client.setup_session(auth, encrypt=True)
        await admin_cycle(hs, client, auth)
        resolved = await client.resolve("88.118.8/product-123", auth=auth)
        assert 2 in [v.index for v in resolved.values]       # the admin-only EMAIL, seen by the session's admin
    audit = [e.actor for e in await hs.store.audit() if e.handle == H]
    assert audit == ["301:88.118.8/ADMIN"] * 5


# ------------------------------------------------------------------ IDIS login

@pytest.mark.parametrize("password", [False, True])
async def test_a_whole_administration_on_a_logged_in_connection(hs, admin_key, password):
    auth = ENT if password else await key_identity(hs, admin_key)
    async with hs.client("tcp") as client:
        await client.login(auth, password=password)
        await admin_cycle(hs, client)                     # no credentials: the connection is logged in
        assert client.channel.connects == 1
    assert await hs.metric("idnode_hs_logins") == 0       # the connection closed
    who = "300:88.118.8/ADMIN" if password else "301:88.118.8/ADMIN"
    assert [e.actor for e in await hs.store.audit() if e.handle == H] == [who] * 5


async def test_a_login_naming_the_handle_alone_takes_any_of_its_keys(hs):
    """The IDPointer SDK's default login index is -1: the handle, not one of its keys."""
    async with hs.client("tcp") as client:
        request = client.request(LoginRequest("88.118.8/ADMIN"), op_code=OpCode.LOGIN_KEY, session_id=0,
                                 op_flags=OpFlag.RD)
        await client.send(request, ENT)
        await client.create_handle(H, [URL, ADMIN])
    assert [e.actor for e in await hs.store.audit() if e.handle == H] == ["300:88.118.8/ADMIN"]


async def test_the_caict_password_login_carries_the_secret_itself(hs):
    """opCode 2000 as the CAICT SDK 2.0.3 writes it: a bare handle, the
    password where a resolution request has its types; RC 1 at once."""
    caict = PasswordLoginRequest("88.118.8/ADMIN", b"enterprise-secret-0001")
    async with hs.client("tcp") as client:
        request = client.request(caict, session_id=0)
        (reply,) = await client.exchange(encode(request), request.request_id)
        assert reply.response_code == RC.SUCCESS and reply.body == ResolutionResponse("88.118.8/ADMIN", ())
        await client.create_handle(H, [URL, ADMIN])
    async with hs.client("tcp") as client:
        wrong = PasswordLoginRequest("300:88.118.8/ADMIN", b"not-the-secret-at-all")
        await refused(client.send(client.request(wrong, session_id=0)), RC.AUTHENTICATION_FAILED)
        garbled = PasswordLoginRequest("88.118.8/ADMIN", b"\xff\xfe")
        await refused(client.send(client.request(garbled, session_id=0)), RC.INVALID_CREDENTIAL)
        await refused(client.delete_handle(H), RC.AUTHENTICATION_NEEDED)      # not logged in
    assert await failures(hs) == 1
    assert [e.actor for e in await hs.store.audit() if e.handle == H] == ["300:88.118.8/ADMIN"]


async def test_a_login_authorises_nothing_on_another_connection(hs):
    async with hs.client("tcp") as logged_in, hs.client("tcp") as other, hs.client("http") as over_http:
        await logged_in.login(ENT)
        for client in (other, over_http):
            with pytest.raises(HandleResponseError) as err:
                await client.create_handle(H, [URL, ADMIN])
            assert err.value.code == RC.AUTHENTICATION_NEEDED
        await logged_in.create_handle(H, [URL, ADMIN])
    assert await hs.store.get_handle(H) is not None


async def test_the_captured_sdk_requests_follow_the_login_flow(hs):
    """The CAICT SDK's own bytes: login (2001, RD), the node's challenge, an
    answer, then its create and add-value with no credentials on the same
    connection."""
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "handle-wire-session"
    login = (folder / "caict-idsdk-2.0.3_tcp_login-key-2001.req.bin").read_bytes()
    async with hs.client("tcp") as client:
        (challenge,) = await client.exchange(login, decode(login).request_id)
        assert challenge.response_code == RC.AUTHENTICATION_NEEDED and challenge.op_code == OpCode.LOGIN_KEY
        assert challenge.request_digest.matches(decode(login))
        answer = make_request(ChallengeAnswerRequest("HS_SECKEY", "88.118.8/ADMIN", 300, ENT.answer(challenge)),
                              request_id=99, now=NOW, version=challenge.version, op_flags=OpFlag.RD,
                              session_id=challenge.envelope.session_id)
        (done,) = await client.exchange(encode(answer), 99)
        assert done.response_code == RC.SUCCESS and done.op_code == OpCode.LOGIN_KEY
        for name in ("create", "add-value"):
            wire = (folder / f"caict-idsdk-2.0.3_tcp_{name}-after-login.req.bin").read_bytes()
            (reply,) = await client.exchange(wire, decode(wire).request_id)
            assert reply.response_code == RC.SUCCESS, reply.body
    record = await hs.store.get_handle("88.118.8/sdk-1")
    assert [(v.index, v.type) for v in record.values] == [(1, "URL"), (2, "DESC"), (3, "EMAIL")]


async def test_the_captured_handle_net_session_setup_gets_a_signed_dh_answer(hs):
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "handle-wire-session"
    wire = (folder / "handlenet-8.1.4_tcp_session-setup-400.req.bin").read_bytes()
    async with hs.client("tcp") as client:
        key = (await client.site_info()).servers[0].public_key
        (reply,) = await client.exchange(wire, decode(wire).request_id)
    assert reply.response_code == RC.SUCCESS and reply.envelope.session_id != 0
    assert reply.body.mode == KeyExchange.DH and reply.body.data[:4] == b"\0\0\0\3"        # AES
    assert reply.request_digest.matches(decode(wire))
    verify_independently(encode(reply), key)



# ------------------------------------------------------------------ bad input

async def failures(hs, transport: str = "tcp") -> float:
    return await hs.metric("idnode_auth_failures_total", protocol=f"hs-{transport}")


async def refused(call, code: int) -> HandleResponseError:
    with pytest.raises(HandleResponseError) as err:
        await call
    assert err.value.code == code, err.value
    return err.value


async def test_forged_and_replayed_challenge_answers(hs, admin_key):
    wrong = SecretKeyAuth("88.118.8/ADMIN", 300, b"not-the-secret-at-all")
    stranger = PublicKeyAuth("88.118.8/ADMIN", 300, admin_key)            # a key that is not 300's
    async with hs.client("tcp") as client:
        await refused(client.create_handle(H, [URL, ADMIN], wrong), RC.AUTHENTICATION_FAILED)
        await refused(client.create_handle(H, [URL, ADMIN], stranger), RC.AUTHENTICATION_FAILED)
        await refused(client.login(SecretKeyAuth("88.118.8/NOBODY", 300, b"whatever-secret")),
                      RC.AUTHENTICATION_FAILED)                           # an identity that does not exist
        request = client.request(CreateHandleRequest(H, (URL, ADMIN)), op_flags=OpFlag(0))
        (challenge,) = await client.exchange(encode(request), request.request_id)
        answer = make_request(ChallengeAnswerRequest("HS_SECKEY", "88.118.8/ADMIN", 300, ENT.answer(challenge)),
                              request_id=5, now=NOW, session_id=challenge.envelope.session_id)
        (done,) = await client.exchange(encode(answer), 5)
        (again,) = await client.exchange(encode(answer), 5)               # the same answer, replayed
    assert done.response_code == RC.SUCCESS and again.response_code == RC.AUTHENTICATION_TIMEOUT
    assert await failures(hs) == 3
    assert [e.operation for e in await hs.store.audit() if e.handle == H] == ["handle.create"]


async def test_a_login_answered_as_another_identity_is_refused(hs, admin_key):
    key_auth = await key_identity(hs, admin_key)
    async with hs.client("tcp") as client:
        request = client.request(LoginRequest("88.118.8/ADMIN", 300), op_code=OpCode.LOGIN_KEY, session_id=0,
                                 op_flags=OpFlag.RD)
        (challenge,) = await client.exchange(encode(request), request.request_id)
        body = ChallengeAnswerRequest(key_auth.auth_type, key_auth.handle, key_auth.index, key_auth.answer(challenge))
        answer = make_request(body, request_id=6, now=NOW, session_id=challenge.envelope.session_id)
        (reply,) = await client.exchange(encode(answer), 6)
        assert reply.response_code == RC.AUTHENTICATION_FAILED         # 301 proved, 300 named
        await refused(client.create_handle(H, [URL, ADMIN]), RC.AUTHENTICATION_NEEDED)   # not logged in
    assert await failures(hs) == 1


async def test_a_session_cannot_be_used_from_another_address_or_with_a_bad_mac(hs):
    async with hs.client("tcp") as owner, hs.client("tcp", local_host="127.0.0.2") as thief:
        session = await owner.setup_session(ENT)
        await owner.create_handle(H, [URL, ADMIN], ENT)
        thief.session = dataclasses.replace(session)                     # the key itself, from another address
        await refused(thief.add_values(H, [DESC]), RC.AUTHENTICATION_FAILED)
        owner.session = dataclasses.replace(session, key=bytes([session.key[0] ^ 1]) + session.key[1:])
        await refused(owner.add_values(H, [DESC]), RC.AUTHENTICATION_FAILED)         # a flipped key bit
        owner.session = session
        request = owner.request(AddValueRequest(H, (DESC,)), op_flags=OpFlag(0))
        wire = owner._wire(request)
        flipped = bytearray(wire)
        flipped[-1] ^= 0x01                                               # a flipped bit in the MAC itself
        (reply,) = await owner.exchange(bytes(flipped), request.request_id)
        assert reply.response_code == RC.AUTHENTICATION_FAILED
        (replay_ok,) = await owner.exchange(wire, request.request_id)
        (replayed,) = await owner.exchange(wire, request.request_id)      # the same message again
        assert replay_ok.response_code == RC.SUCCESS and replayed.response_code == RC.AUTHENTICATION_FAILED
    assert await failures(hs) == 4
    assert [v.index for v in (await hs.store.get_handle(H)).values] == [1, 3, 100]   # added once


async def test_an_expired_session_asks_for_a_new_one(hs):
    async with hs.client("tcp") as client:
        await client.setup_session(ENT, timeout=60)
        await client.create_handle(H, [URL, ADMIN], ENT)
        hs.clock.advance(61)
        await refused(client.add_values(H, [DESC]), RC.SESSION_TIMEOUT)   # a Handle client sets up a new one
        client.session = None
        session = await client.setup_session(ENT)
        await client.add_values(H, [DESC], ENT)
        await client.terminate_session()                                  # opCode 401 ends it
        client.session = session
        await refused(client.remove_values(H, [3]), RC.SESSION_TIMEOUT)
        request = client.request(GenericRequest("/"), op_code=OpCode.SESSION_TERMINATE)
        await refused(client.send(request), RC.SESSION_TIMEOUT)            # ended already
    assert [v.index for v in (await hs.store.get_handle(H)).values] == [1, 3, 100]


async def test_sessions_and_logins_only_where_they_hold(hs):
    async with hs.client("udp") as udp, hs.client("http") as http:
        udp.server_key = http.server_key = (await http.site_info()).servers[0].public_key
        await refused(udp.setup_session(ENT), RC.ERROR)                   # over UDP: "send it over TCP"
        request = http.request(LoginRequest("88.118.8/ADMIN", 300), op_code=OpCode.LOGIN_KEY, session_id=0)
        (reply,) = await http.exchange(encode(request), request.request_id)
        assert reply.response_code == RC.ERROR                            # a login holds for a TCP connection
    assert len(hs.service.sessions) == 0 and len(hs.service.challenges) == 0


@pytest.mark.parametrize("op, body", [
    (OpCode.SESSION_SETUP, b"\x00\x04\x00\x01"),                          # cut short
    (OpCode.SESSION_SETUP, b"\x00\x04" + bytes(4) + b"\x00\x00\x00\x0e88.118.8/ADMIN" + bytes(4)
     + b"\xff\xff\xff\xff"),                                              # a key of 4 GiB
    (OpCode.SESSION_SETUP, b"\x00\x04" + bytes(4) + b"\x00\x00\x00\x0e88.118.8/ADMIN" + bytes(4)
     + b"\x00\x00\x00\x10DH_PUB_KEY-junk!"),                              # a key that is no DH key
    (OpCode.SESSION_EXCHANGE_KEY, b"\x00\x00\x01\x00abc"),                # cut short
    (OpCode.LOGIN_KEY, b"\x00\x00\x00\x0e88.118.8/ADM"),                  # cut short
    (OpCode.LOGIN_PASSWORD, b"\x00\x00\x00\x0e88.118.8/ADMIN" + bytes(4) + bytes(300)),     # trailing bytes
])
async def test_malformed_session_and_login_bodies_get_rc_4(hs, op, body):
    header = struct.pack(">IIIHBBII", op, 0, 0, 0xFFFF, 0, 0, NOW + 600, len(body))
    message = header + body + bytes(4)
    wire = struct.pack(">BBBBIIII", 2, 10, 2, 10, 0, 77, 0, len(message)) + message
    async with hs.client("tcp") as client:
        (reply,) = await client.exchange(wire, 77)
    assert reply.response_code == RC.PROTOCOL_ERROR
    assert len(hs.service.sessions) == 0


async def test_failures_of_every_kind_lock_the_source_out(tmp_path):
    async with hs_node(tmp_path, **{"auth.lockout_failures": 3}) as hs:
        async with hs.client("tcp") as owner:
            session = await owner.setup_session(ENT)
            await owner.create_handle(H, [URL, ADMIN], ENT)
            owner.session = dataclasses.replace(session, key=bytes(len(session.key)))
            for _ in range(3):
                await refused(owner.add_values(H, [DESC]), RC.AUTHENTICATION_FAILED)
            owner.session = session                                       # the right key, now too late
            await refused(owner.add_values(H, [DESC]), RC.AUTHENTICATION_FAILED)
        async with hs.client("tcp") as fresh:
            await refused(fresh.login(ENT), RC.AUTHENTICATION_FAILED)     # locked out, whatever the proof


async def test_public_key_work_is_budgeted_per_source_prefix(tmp_path):
    """Signatures and key exchanges cost the node real CPU: one network that
    asks for them without end is refused (RC 3, unsigned, no work done) while
    another is still served."""
    async with hs_node(tmp_path, **{"handle.crypto_rate": 0.01, "handle.crypto_burst": 20}) as hs:
        async with hs.client("tcp", certify=True) as greedy, \
                hs.client("tcp", certify=True, local_host="127.0.1.1") as other:
            codes = []
            for _ in range(25):
                try:
                    await greedy.resolve("88.118.8/product-123")
                    codes.append(RC.SUCCESS)
                except HandleResponseError as exc:
                    codes.append(exc.code)
                except HandleTransportError:                     # the refusal is not signed
                    codes.append(RC.SERVER_BUSY)
            assert codes.count(RC.SUCCESS) == 20 and codes[20:] == [RC.SERVER_BUSY] * 5
            await refused_or_unsigned(greedy.setup_session(ENT))
            await other.setup_session(ENT)                       # another /24: its own budget (11 of 20)
            reply = await other.send(other.request(ResolutionRequest("88.118.8/product-123")))
            assert reply[0].credential.type == "HS_MAC"           # in a session: the session key's MAC
        assert await hs.metric("idnode_hs_work_refused_total") == 6
        assert await hs.metric("idnode_hs_signed_replies_total") == 21       # 20 + the setup


async def refused_or_unsigned(call) -> None:
    with pytest.raises((HandleResponseError, HandleTransportError)) as err:
        await call
    assert getattr(err.value, "code", RC.SERVER_BUSY) == RC.SERVER_BUSY


async def test_the_session_table_is_bounded_and_the_oldest_makes_room(tmp_path):
    async with hs_node(tmp_path, **{"handle.max_sessions": 2}) as hs:
        clients = [hs.client("tcp") for _ in range(3)]
        for client in clients:
            await client.setup_session(ENT)
        await refused(clients[0].create_handle(H, [URL, ADMIN], ENT), RC.SESSION_TIMEOUT)     # ended to make room
        await clients[2].create_handle(H, [URL, ADMIN], ENT)
        assert len(hs.service.sessions) == 2
        assert await hs.metric("idnode_hs_sessions") == 2
        assert await hs.metric("idnode_hs_sessions_evicted_total", reason="full") == 1
        for client in clients:
            await client.close()
