"""Session key agreement, session encryption, HS_MAC and HS_SIGNED
credentials, Handle's public key encoding: each checked against an
independent rendering of what Handle.Net's Java does, and round trips."""

from __future__ import annotations

import hashlib
import hmac
import warnings

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.handle import (ENVELOPE_SIZE, MAX_VERSION, MIN_VERSION, CreateHandleRequest, Credential,
                             DeleteHandleRequest, DHPublicKey, EnvFlag, HandleProtocolError, OpCode, Reassembler,
                             ResolutionRequest, ResolutionResponse, SessionCipher, decode, decrypt_message, decrypt_wire,
                             dh_client_keypair, dh_client_session_key, dh_server_exchange, encode, encrypt_message,
                             encrypt_wire, header_and_body, load_public_key, mac_credential, make_reply,
                             make_request, new_session_key, pack_session_key, public_key_bytes,
                             rsa_decrypt_session_key, rsa_encrypt_session_key, sign, split_datagrams,
                             unpack_session_key, verify_mac, verify_signature)
from protocol.handle import sessioncrypto
from protocol.handle.keys import OAKLEY_GROUP_2_G, OAKLEY_GROUP_2_P
from protocol.values import HandleValue

from .test_session import cap, server_key
from .wirebuild import blob, u32

NOW = 1_790_000_000
P, G = OAKLEY_GROUP_2_P, OAKLEY_GROUP_2_G
VERSIONS = [(2, minor) for minor in range(MIN_VERSION[1], MAX_VERSION[1] + 1)]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def dsa_key():
    return dsa.generate_private_key(key_size=2048)


def java_dh_key(shared: int, p: int, cipher: SessionCipher) -> bytes:
    """GenericProvider.getKeyFromDH, written out again from the Java."""
    secret = shared.to_bytes((p.bit_length() + 7) // 8, "big")       # KeyAgreement.generateSecret()
    if cipher == SessionCipher.AES:
        i = 0
        while i + 32 < len(secret) and secret[i] == 0:                  # stripLeadingZerosAndTruncate
            i += 1
        return secret[i:i + 32]
    raw = secret[:8] if cipher == SessionCipher.DES else secret[:24]    # DESKeySpec / DESedeKeySpec
    out = []
    for b in raw:
        b &= 0xFE
        out.append(b | ((bin(b).count("1") & 1) ^ 1))
    return bytes(out)


def dh_bytes(y: int, p: int = P, g: int = G) -> bytes:
    def big(n: int) -> bytes:
        return blob(n.to_bytes(n.bit_length() // 8 + 1, "big"))        # BigInteger.toByteArray
    return blob(b"DH_PUB_KEY") + b"\x00\x00" + big(y) + big(p) + big(g)


# ------------------------------------------------------------------ Diffie-Hellman

def test_client_keypair_is_oakley_group_2_as_handle_net_encodes_it():
    private, public = dh_client_keypair(private_value=123456789)
    assert public == dh_bytes(pow(2, 123456789, P))
    captured = decode(cap("018")).body.public_key                 # Handle.Net 8.1.4's key: same type, p, g
    assert public[:16] == captured[:16] and public[-138:] == captured[-138:]
    key = load_public_key(public)
    assert key == private.public == DHPublicKey(pow(2, 123456789, P), P, 2)
    assert "123456789" not in repr(private)
    fresh, fresh_public = dh_client_keypair()
    assert fresh.x.bit_length() == sessioncrypto.DH_EXPONENT_BITS and fresh_public != public


@pytest.mark.parametrize("cipher", list(SessionCipher))
@pytest.mark.parametrize("version", [(2, 4), (2, 10), (2, 11)])
def test_dh_both_sides_agree(cipher, version):
    client, public = dh_client_keypair(private_value=0xC1 << 500)
    data, server_key_ = dh_server_exchange(public, cipher, version, private_value=0x5E << 500)
    assert data[:4] == u32(cipher)
    server_public = load_public_key(data[4:])
    assert server_public == DHPublicKey(pow(G, 0x5E << 500, P), P, G)
    assert data[4:] == dh_bytes(server_public.y)
    got_cipher, client_key = dh_client_session_key(client, data, version)
    assert got_cipher is cipher and client_key == server_key_
    assert server_key_ == java_dh_key(pow(G, (0xC1 << 500) * (0x5E << 500), P), P, cipher)
    assert len(server_key_) == {SessionCipher.DES: 8, SessionCipher.DESEDE: 24, SessionCipher.AES: 32}[cipher]
    if cipher != SessionCipher.AES:
        assert all(bin(b).count("1") % 2 == 1 for b in server_key_)          # DES odd parity


@pytest.mark.parametrize("cipher", list(SessionCipher))
def test_dh_before_2_4_is_des_without_the_cipher_code(cipher):
    client, public = dh_client_keypair(private_value=77 << 300)
    data, key = dh_server_exchange(public, cipher, (2, 3), private_value=99 << 300)
    assert data == dh_bytes(pow(G, 99 << 300, P))
    assert key == java_dh_key(pow(G, (77 << 300) * (99 << 300), P), P, SessionCipher.DES)
    assert dh_client_session_key(client, data, (2, 3)) == (SessionCipher.DES, key)


def test_dh_with_the_captured_client_key():
    """The server half against the key Handle.Net 8.1.4 sent in 018."""
    client_key = decode(cap("018")).body.public_key
    data, key = dh_server_exchange(client_key, SessionCipher.AES, (2, 10), private_value=0xABCDEF << 400)
    y = load_public_key(client_key).y
    assert key == java_dh_key(pow(y, 0xABCDEF << 400, P), P, SessionCipher.AES)
    assert data[:4] == u32(3) and load_public_key(data[4:]).p == P


@pytest.mark.parametrize(("shared", "expected"), [
    (5, bytes(31) + b"\x05"),                                     # all but 32 leading zero bytes skipped
    (1 << 1015, b"\x80" + bytes(31)),                             # one leading zero byte skipped
    (P - 2, (P - 2).to_bytes(128, "big")[:32]),
])
def test_aes_key_skips_leading_zeros_as_java_does(shared, expected):
    assert sessioncrypto._dh_key(shared, P, SessionCipher.AES) == expected == java_dh_key(shared, P,
                                                                                            SessionCipher.AES)


def test_des_keys_keep_leading_zeros():
    key = sessioncrypto._dh_key(1 << 1015, P, SessionCipher.DES)
    assert key == java_dh_key(1 << 1015, P, SessionCipher.DES) and key[0] == 0x01        # 0x00 with parity


@pytest.mark.parametrize("key", [
    dh_bytes(5, p=(1 << 1023) + 1),                               # 1024 bits is the least
    dh_bytes(5, p=(1 << 2047) + 1),                               # 2048 bits the most
])
def test_group_sizes_accepted(key):
    dh_server_exchange(key, SessionCipher.AES, (2, 10), private_value=1 << 300)


@pytest.mark.parametrize("key", [
    dh_bytes(5, p=(1 << 1022) + 1),                               # 1023 bits
    dh_bytes(5, p=(1 << 2048) + 1),                               # 2049 bits
    dh_bytes(5, p=1 << 1023),                                     # even
    dh_bytes(5, g=1), dh_bytes(5, g=P - 1), dh_bytes(5, g=0), dh_bytes(5, g=P),
    dh_bytes(1), dh_bytes(P - 1), dh_bytes(0), dh_bytes(P), dh_bytes(P + 5),
    dh_bytes(5)[:-1], b"", b"\x00\x00\x00\x0aDH_PUB_KEY", b"garbage",
    blob(b"SM2_PUB_KEY") + b"\x00\x00" + blob(b"x"),
    b"\x00\x00\x00\x0bRSA_PUB_KEY\x00\x00" + blob(b"\x01\x00\x01") + blob(b"\x00" + b"\xff" * 128),
])
def test_bad_client_keys_are_refused(key):
    with pytest.raises(HandleProtocolError):
        dh_server_exchange(key, SessionCipher.AES, (2, 10))


def test_client_refuses_bad_replies():
    client, public = dh_client_keypair(private_value=1 << 300)
    data, _ = dh_server_exchange(public, SessionCipher.AES, (2, 10), private_value=3 << 300)
    for bad in (u32(9) + data[4:], data[:3], u32(3) + dh_bytes(5, p=(1 << 1023) + 1),
                u32(3) + dh_bytes(5, g=5), u32(3) + dh_bytes(1), data[4:]):
        with pytest.raises(HandleProtocolError):
            dh_client_session_key(client, bad, (2, 10))


def test_private_values_out_of_range_are_caller_errors():
    with pytest.raises(ValueError):
        dh_client_keypair(private_value=1)
    with pytest.raises(HandleProtocolError):
        dh_client_keypair(p=23, g=5)


@FUZZ
@given(st.binary(max_size=300))
def test_random_exchange_data_only_protocol_errors(data):
    client, _ = dh_client_keypair(private_value=1 << 300)
    for call in (lambda: dh_server_exchange(data, SessionCipher.AES, (2, 10), private_value=1 << 300),
                 lambda: dh_client_session_key(client, data, (2, 10)),
                 lambda: dh_client_session_key(client, data, (2, 3)),
                 lambda: load_public_key(data)):
        try:
            call()
        except HandleProtocolError:
            pass


# ------------------------------------------------------------------ RSA key transport

@pytest.mark.parametrize("cipher", list(SessionCipher))
@pytest.mark.parametrize("version", [(2, 2), (2, 10)])
def test_rsa_key_transport_round_trip(rsa_key, cipher, version):
    key = new_session_key(cipher)
    plain = pack_session_key(cipher, key, version)
    assert plain == u32(cipher) + key
    sealed = rsa_encrypt_session_key(public_key_bytes(rsa_key.public_key()), plain, version)
    assert len(sealed) == 256
    assert rsa_decrypt_session_key(rsa_key, sealed, version) == plain
    # what Java's RSA/ECB/PKCS1 decryption of it gives
    assert rsa_key.decrypt(sealed, padding.PKCS1v15()) == plain
    assert unpack_session_key(plain, version) == (cipher, key)


def test_rsa_key_transport_before_2_2_is_a_bare_des_key(rsa_key):
    key = new_session_key(SessionCipher.DES)
    plain = pack_session_key(SessionCipher.DES, key, (2, 1))
    assert plain == key
    sealed = rsa_encrypt_session_key(rsa_key.public_key(), plain, (2, 1))
    assert unpack_session_key(rsa_decrypt_session_key(rsa_key, sealed, (2, 1)), (2, 1)) == (SessionCipher.DES, key)
    with pytest.raises(ValueError):
        pack_session_key(SessionCipher.AES, bytes(32), (2, 1))


@pytest.mark.parametrize(("plain", "expected"), [
    (bytes(range(8)), SessionCipher.DES),          # Handle.Net's client sends the key without its code in 402
    (bytes(range(24)), SessionCipher.DESEDE),
    (bytes(range(16)), SessionCipher.AES),
    (bytes(range(32)), SessionCipher.AES),
    (u32(3) + bytes(16), SessionCipher.AES),
    (u32(2) + bytes(24), SessionCipher.DESEDE),
])
def test_unpack_reads_both_forms(plain, expected):
    cipher, key = unpack_session_key(plain, (2, 10))
    assert cipher is expected and key == (plain[4:] if len(plain) in (12, 20, 28, 36) else plain)


@pytest.mark.parametrize("plain", [b"", bytes(7), bytes(12), u32(9) + bytes(8), u32(1) + bytes(9), bytes(33)])
def test_unpack_refuses_what_fits_no_cipher(plain):
    with pytest.raises(HandleProtocolError):
        unpack_session_key(plain, (2, 10))


def test_rsa_refusals(rsa_key, dsa_key):
    for junk in (b"", bytes(255), b"\x01" * 300):
        with pytest.raises(HandleProtocolError):
            rsa_decrypt_session_key(rsa_key, junk, (2, 10))
    # Bad padding of the right length: OpenSSL's implicit rejection gives pseudo-random bytes (or an error),
    # which unpack_session_key then most likely refuses; either way nothing but HandleProtocolError.
    try:
        assert isinstance(rsa_decrypt_session_key(rsa_key, bytes(256), (2, 10)), bytes)
    except HandleProtocolError:
        pass
    with pytest.raises(HandleProtocolError):
        rsa_encrypt_session_key(public_key_bytes(dsa_key.public_key()), bytes(12), (2, 10))
    with pytest.raises(HandleProtocolError):
        rsa_encrypt_session_key(rsa_key.public_key(), bytes(250), (2, 10))         # too long for PKCS#1
    with pytest.raises(ValueError):
        pack_session_key(SessionCipher.DES, bytes(9), (2, 10))


def test_new_session_keys():
    assert len(new_session_key(SessionCipher.AES)) == 32
    des = new_session_key(SessionCipher.DESEDE)
    assert len(des) == 24 and all(bin(b).count("1") % 2 for b in des)
    assert new_session_key(SessionCipher.DES) != new_session_key(SessionCipher.DES)


# ------------------------------------------------------------------ session encryption

KEY32 = bytes(range(1, 33))
IV16, IV8 = bytes(range(16)), bytes(range(8))


def test_des_known_answer():
    """The classic DES vector (key 133457799BBCDFF1): ECB before 2.4."""
    key = bytes.fromhex("133457799BBCDFF1")
    sealed = encrypt_message(key, SessionCipher.DES, (2, 3), bytes.fromhex("0123456789ABCDEF"))
    assert sealed[:8] == bytes.fromhex("85E813540F0AB405") and len(sealed) == 16        # + a padding block


def test_aes_is_aes_128_with_the_first_16_key_bytes():
    plain = b"header+body+credential"
    sealed = encrypt_message(KEY32, SessionCipher.AES, (2, 10), plain, iv=IV16)
    enc = Cipher(algorithms.AES(KEY32[:16]), modes.CBC(IV16)).encryptor()
    assert sealed == IV16 + enc.update(plain + bytes([10]) * 10) + enc.finalize()         # PKCS#5 padding


def test_desede_takes_24_bytes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    sealed = encrypt_message(KEY32, SessionCipher.DESEDE, (2, 10), b"12345678", iv=IV8)
    enc = Cipher(TripleDES(KEY32[:24]), modes.CBC(IV8)).encryptor()
    assert sealed == IV8 + enc.update(b"12345678" + bytes([8]) * 8) + enc.finalize()


@pytest.mark.parametrize("cipher", list(SessionCipher))
@pytest.mark.parametrize("version", [(2, 1), (2, 3), (2, 4), (2, 11)])
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 492, 5000])
def test_encryption_round_trip(cipher, version, size):
    plain = bytes(i % 251 for i in range(size))
    sealed = encrypt_message(KEY32, cipher, version, plain)
    block = 16 if cipher == SessionCipher.AES else 8
    iv = block if version >= (2, 4) else 0
    assert len(sealed) == iv + (size // block + 1) * block
    assert decrypt_message(KEY32, cipher, version, sealed) == plain
    if version >= (2, 4):
        assert encrypt_message(KEY32, cipher, version, plain) != sealed                   # a fresh IV each time


@pytest.mark.parametrize("cipher", list(SessionCipher))
def test_bad_ciphertext_is_a_protocol_error(cipher):
    sealed = encrypt_message(KEY32, cipher, (2, 10), b"x" * 40, iv=IV16 if cipher == SessionCipher.AES else IV8)
    for bad in (b"", sealed[:-1], sealed[:8], sealed + b"\x00"):
        with pytest.raises(HandleProtocolError):
            decrypt_message(KEY32, cipher, (2, 10), bad)
    other = bytes(range(2, 34))
    with pytest.raises(HandleProtocolError):                         # deterministic: the padding comes out wrong
        decrypt_message(other, cipher, (2, 10), sealed)


def test_short_keys_and_ivs_are_caller_errors():
    for cipher, key in ((SessionCipher.AES, bytes(15)), (SessionCipher.DES, bytes(7)),
                        (SessionCipher.DESEDE, bytes(23))):
        with pytest.raises(ValueError):
            encrypt_message(key, cipher, (2, 10), b"x")
    with pytest.raises(ValueError):
        encrypt_message(KEY32, SessionCipher.AES, (2, 10), b"x", iv=IV8)


@FUZZ
@given(st.sampled_from(list(SessionCipher)), st.sampled_from([(2, 3), (2, 10)]), st.binary(max_size=80))
def test_random_ciphertext_only_protocol_errors(cipher, version, data):
    try:
        decrypt_message(KEY32, cipher, version, data)
    except HandleProtocolError:
        pass


def _resolution_reply(version, values=()):
    request = make_request(ResolutionRequest("a/b"), request_id=7, now=NOW, version=version, suggested=version)
    return make_reply(request, ResolutionResponse("a/b", values), now=NOW)


def _session_request(version=(2, 10), session_id=4, request_id=875921436, body=None):
    body = body or CreateHandleRequest("88.118/admin-test-1", (HandleValue(1, "URL", b"https://example.com/"),))
    return make_request(body, request_id=request_id, now=NOW, version=version, suggested=version,
                        session_id=session_id)


@pytest.mark.parametrize("cipher", list(SessionCipher))
def test_encrypted_wire_over_tcp_and_udp(cipher):
    request = _session_request()
    request = request.with_(credential=mac_credential(KEY32, request, 1))
    wire = encode(request)
    sealed = encrypt_wire(KEY32, cipher, (2, 10), wire)
    assert sealed[2] & EnvFlag.ENCRYPTED and sealed[:2] == wire[:2] and sealed[4:12] == wire[4:12]
    assert int.from_bytes(sealed[16:20], "big") == len(sealed) - ENVELOPE_SIZE
    with pytest.raises(HandleProtocolError):
        decode(sealed)                                               # the codec reads plain messages only
    plain = decrypt_wire(KEY32, cipher, (2, 10), sealed)
    assert plain == wire and verify_mac(KEY32, decode(plain)) == 1
    values = tuple(HandleValue(i, "DESC", b"x" * 300) for i in range(1, 5))
    big = encrypt_wire(KEY32, cipher, (2, 10), encode(_resolution_reply((2, 10), values)))
    packets = split_datagrams(big)
    assert len(packets) > 1
    r = Reassembler()
    whole = [r.feed(("127.0.0.1", 1), p, now=0.0) for p in packets][-1]
    assert decode(decrypt_wire(KEY32, cipher, (2, 10), whole)).body.handle == "a/b"


def test_decrypt_wire_refusals():
    wire = encode(_session_request())
    with pytest.raises(HandleProtocolError):
        decrypt_wire(KEY32, SessionCipher.AES, (2, 10), wire)          # not encrypted
    refused = None
    for _ in range(20):    # the IV is random: a wrong key leaves valid padding about once in 256 seals
        sealed = encrypt_wire(KEY32, SessionCipher.AES, (2, 10), wire)
        try:
            noise = decrypt_wire(bytes(32), SessionCipher.AES, (2, 10), sealed)
        except HandleProtocolError as exc:
            refused = exc
            break
        assert noise != wire                                           # then it is noise, never the request
    assert refused is not None and refused.request_id == 875921436    # enough to answer RC 4
    with pytest.raises(HandleProtocolError):
        decrypt_wire(KEY32, SessionCipher.AES, (2, 10), sealed[:-1])


# ------------------------------------------------------------------ HS_MAC

def java_mac(key: bytes, msg, counter: int) -> tuple[bytes, bytes]:
    """AbstractMessage.signMessage(byte[]), written out again: (alg, MAC)."""
    hb = header_and_body(msg)
    env = msg.envelope
    v = msg.version
    if v >= (2, 7):
        prefix = bytes(v) + (bytes(env.suggested_version) if v >= (2, 8) else b"")
        data = prefix + u32(env.session_id) + u32(env.request_id) + u32(counter) + hb
        return b"HMAC-SHA256", hmac.new(key, data, "sha256").digest()
    if v >= (2, 5):       # what brokenTwoFiveTwoSixSignature's buffer ends up holding
        data = key[:4] + hb + key + bytes(len(key) + 10)
        return (b"SHA1" if v >= (2, 6) else b"\x02"), hashlib.sha1(data).digest()
    return b"\x02", hashlib.sha1(key + hb + key).digest()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("key", [KEY32, bytes(range(8)), bytes(range(24))])
def test_mac_as_handle_net_computes_it(version, key):
    msg = _session_request(version)
    cred = mac_credential(key, msg, 7)
    alg, mac = java_mac(key, msg, 7)
    assert cred == Credential("HS_MAC", blob(alg) + blob(mac), "", 7)
    signed = decode(encode(msg.with_(credential=cred)))
    assert verify_mac(key, signed) == 7
    assert verify_mac(bytes(len(key)), signed) is None
    flipped = bytearray(encode(signed))
    flipped[ENVELOPE_SIZE + 24 + 10] ^= 0x01                            # a bit of the handle
    assert verify_mac(key, decode(bytes(flipped))) is None
    other_id = signed.with_(envelope=signed.envelope.with_(request_id=1))
    assert (verify_mac(key, other_id) is None) == (version >= (2, 7))   # before 2.7 the ids are not covered


def test_counter_is_covered_from_2_7_only():
    for version, covered in (((2, 4), False), ((2, 6), False), ((2, 7), True), ((2, 11), True)):
        msg = _session_request(version)
        cred = mac_credential(KEY32, msg, 3)
        moved = Credential(cred.type, cred.section, "", 4)
        assert (verify_mac(KEY32, msg.with_(credential=moved)) is None) == covered


@pytest.mark.parametrize(("alg", "mac"), [
    (b"HMAC-SHA1", lambda k, d: hmac.new(k, d, "sha1").digest()),
    (b"hmac_sha256", lambda k, d: hmac.new(k, d, "sha256").digest()),
    (b"SHA-256", lambda k, d: hashlib.sha256(k + d + k).digest()),
    (b"SHA256", lambda k, d: hashlib.sha256(k + d + k).digest()),
    (b"SHA-1", lambda k, d: hashlib.sha1(k + d + k).digest()),
    (b"MD5", lambda k, d: hashlib.md5(k + d + k).digest()),
    (b"\x13", lambda k, d: hmac.new(k, d, "sha256").digest()),
])
def test_verifier_takes_the_algorithms_handle_net_takes(alg, mac):
    msg = _session_request((2, 10))
    env = msg.envelope
    data = b"\x02\x0a\x02\x0a" + u32(env.session_id) + u32(env.request_id) + u32(5) + header_and_body(msg)
    cred = Credential("HS_MAC", blob(alg) + blob(mac(KEY32, data)), "", 5)
    assert verify_mac(KEY32, msg.with_(credential=cred)) == 5


@pytest.mark.parametrize("section", [blob(b"PBKDF2-HMAC-SHA1") + blob(bytes(20)), blob(b"SM3") + blob(bytes(32)),
                                     blob(b"\x22") + blob(bytes(20)), b"", blob(b"HMAC-SHA256"), b"\xff" * 9])
def test_verifier_refuses_what_it_cannot_check(section):
    msg = _session_request((2, 10))
    assert verify_mac(KEY32, msg.with_(credential=Credential("HS_MAC", section, "", 1))) is None


def test_no_or_other_credential_is_no_mac(rsa_key):
    msg = _session_request()
    assert verify_mac(KEY32, msg) is None
    assert verify_mac(KEY32, msg.with_(credential=sign(rsa_key, msg))) is None


@pytest.mark.parametrize("number", ["021", "025", "027", "031", "036", "040"])
def test_captured_macs_need_the_session_key(number):
    msg = decode(cap(number))
    assert verify_mac(KEY32, msg) is None
    # ours has the same shape as Handle.Net's, for the same message and counter
    ours = mac_credential(KEY32, msg, msg.credential.signer_index)
    assert ours.type == msg.credential.type and ours.hash_alg == msg.credential.hash_alg
    assert len(ours.to_bytes()) == len(msg.credential.to_bytes())


@FUZZ
@given(st.binary(max_size=80), st.integers(0, 0xFFFFFFFF), st.sampled_from(VERSIONS))
def test_random_mac_sections_never_raise(section, counter, version):
    msg = _session_request(version).with_(credential=Credential("HS_MAC", section, "", counter))
    assert verify_mac(KEY32, msg) in (None, counter)


# ------------------------------------------------------------------ HS_SIGNED

@pytest.mark.parametrize(("version", "alg"), [((2, 1), "SHA1"), ((2, 5), "SHA1"), ((2, 6), "SHA1"),
                                              ((2, 7), "SHA-256"), ((2, 10), "SHA-256"), ((2, 11), "SHA-256")])
def test_rsa_server_signature(rsa_key, version, alg):
    reply = _resolution_reply(version)
    cred = sign(rsa_key, reply, counter=3)
    assert (cred.type, cred.signer_handle, cred.signer_index, cred.hash_alg) == ("HS_SIGNED", "", 3, alg)
    signed = decode(encode(reply.with_(credential=cred)))
    key_bytes = public_key_bytes(rsa_key.public_key())
    assert verify_signature(key_bytes, signed) and verify_signature(rsa_key.public_key(), signed)
    assert not verify_signature(key_bytes, signed.with_(header=signed.header.with_(expiration=1)))
    assert not verify_signature(public_key_bytes(rsa.generate_private_key(public_exponent=65537,
                                                                          key_size=1024).public_key()), signed)


@pytest.mark.parametrize(("version", "alg"), [((2, 6), "SHA1"), ((2, 10), "SHA1"), ((2, 11), "SHA-256")])
def test_dsa_server_signature(dsa_key, version, alg):
    reply = _resolution_reply(version)
    cred = sign(dsa_key, reply)
    assert cred.hash_alg == alg
    signed = reply.with_(credential=cred)
    assert verify_signature(public_key_bytes(dsa_key.public_key()), signed)
    assert not verify_signature(public_key_bytes(dsa_key.public_key()),
                                signed.with_(body=ResolutionResponse("a/c")))


def test_signature_credential_has_handle_net_shape(rsa_key):
    """Same layout as the captured 015 credential: version 0, flags 0, signer "" / 0, SHA-256, 256 bytes."""
    captured = decode(cap("015")).credential
    ours = sign(rsa_key, decode(cap("015")).with_(credential=None))
    assert len(ours.to_bytes()) == len(captured.to_bytes())
    assert ours.to_bytes()[:-256] == captured.to_bytes()[:-256]


def test_verify_signature_refusals(rsa_key):
    msg = decode(cap("015"))
    key = server_key("013")
    for cred in (None, Credential("HS_MAC", msg.credential.section), Credential("HS_SIGNED", b"junk"),
                 Credential("HS_SIGNED", blob(b"SM3") + blob(msg.credential.signature)),
                 Credential("HS_SIGNED", blob(b"SHA-256") + blob(b"short"))):
        assert not verify_signature(key, msg.with_(credential=cred))
    old = Credential("HS_DSAPUBKEY", msg.credential.section)               # the old type name is accepted
    assert verify_signature(key, msg.with_(credential=old))
    one_byte = Credential("HS_SIGNED", blob(b"\x03") + blob(msg.credential.signature))
    assert verify_signature(key, msg.with_(credential=one_byte))
    assert not verify_signature(dh_bytes(5), msg)                           # a DH key signs nothing
    for bad_key in (b"", b"junk"):
        with pytest.raises(HandleProtocolError):
            verify_signature(bad_key, msg)
    with pytest.raises(TypeError):
        sign(b"not a key", msg)


# ------------------------------------------------------------------ key encoding

@pytest.mark.parametrize("number", ["002", "013", "017"])
def test_site_key_round_trips_byte_for_byte(number):
    raw = server_key(number)
    key = load_public_key(raw)
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
    assert public_key_bytes(key) == raw                   # Util.getBytesFromPublicKey's exact bytes
    assert raw.endswith(bytes(4))                         # with the four zero bytes it never fills


def test_dsa_and_dh_encoding(dsa_key):
    raw = public_key_bytes(dsa_key.public_key())
    n = dsa_key.public_key().public_numbers()
    assert raw.startswith(blob(b"DSA_PUB_KEY") + b"\x00\x00")
    q = n.parameter_numbers.q
    assert raw[4 + 11 + 2:].startswith(blob(q.to_bytes(q.bit_length() // 8 + 1, "big")))
    assert load_public_key(raw).public_numbers() == n
    client_key = decode(cap("018")).body.public_key
    assert public_key_bytes(load_public_key(client_key)) == client_key
    with pytest.raises(TypeError):
        public_key_bytes(object())


def test_public_key_with_trailing_bytes_is_read_as_handle_net_does():
    raw = server_key()
    assert load_public_key(raw + b"extra").public_numbers() == load_public_key(raw).public_numbers()


@pytest.mark.parametrize("raw", [
    b"", b"\x00\x00\x00\x0bRSA_PUB_KEY", blob(b"RSA_PUB_KEY") + b"\x00\x00" + blob(b"\x03") + blob(b"\x00"),
    blob(b"RSA_PUB_KEY") + b"\x00\x00" + blob(b"\x02") + blob(b"\x7f" * 256),             # even exponent
    blob(b"RSA_PUB_KEY") + b"\x00\x00" + blob(b"\x03") + blob(b"\x7f" * 2100),             # 16800 bits
    blob(b"DSA_PUB_KEY") + b"\x00\x00" + blob(b"\x01") * 4,
    blob(b"SM2_PUB_KEY") + b"\x00\x00" + blob(b"pem"), blob(b"\xff\xfe") + b"\x00\x00",
])
def test_unreadable_keys(raw):
    with pytest.raises(HandleProtocolError):
        load_public_key(raw)


@FUZZ
@given(st.binary(max_size=200))
def test_random_key_bytes_only_protocol_errors(raw):
    for data in (raw, blob(b"RSA_PUB_KEY") + raw, blob(b"DSA_PUB_KEY") + raw, blob(b"DH_PUB_KEY") + raw):
        try:
            load_public_key(data)
        except HandleProtocolError:
            pass


def test_no_deprecation_warnings_on_the_session_paths(rsa_key):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client, public = dh_client_keypair()
        data, key = dh_server_exchange(public, SessionCipher.DES, (2, 10))
        assert dh_client_session_key(client, data, (2, 10))[1] == key
        for cipher in SessionCipher:
            assert decrypt_message(KEY32, cipher, (2, 10), encrypt_message(KEY32, cipher, (2, 10), b"x")) == b"x"
        msg = _session_request(body=DeleteHandleRequest("a/b"))
        assert verify_signature(rsa_key.public_key(), msg.with_(credential=sign(rsa_key, msg)))
        assert int(msg.op_code) == OpCode.DELETE_HANDLE
