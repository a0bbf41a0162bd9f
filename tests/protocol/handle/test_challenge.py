"""Challenge and answer: HS_SECKEY both ways (plain and PBKDF2), HS_PUBKEY layout."""

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from protocol.codes import RC
from protocol.handle import (Challenge, ChallengeAnswerRequest, HashCode, OpCode, PublicKeyAnswer, SecretKeyAnswer,
                             VerifyChallengeRequest, decode, encode, make_reply, make_request, secret_key_answer,
                             secret_key_code, verify_secret_key_answer)

from .wirebuild import blob, fixture, s, u8, u32

NONCE = bytes(range(16))
DIGEST = hashlib.sha1(b"the challenged request").digest()
SECRET = b"enterprise-secret-0001"


def test_plain_sha1_answer_layout():
    # Handle.Net Util.doMac(SHA1): SHA-1 over secret + nonce + digest + secret, after the code byte.
    answer = secret_key_answer(SECRET, NONCE, DIGEST, HashCode.SHA1)
    assert answer == u8(2) + hashlib.sha1(SECRET + NONCE + DIGEST + SECRET).digest()
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, answer)


@pytest.mark.parametrize(("iterations", "derived"), [
    # RFC 6070 PBKDF2-HMAC-SHA1 vectors, P = "password", S = "salt", dkLen = 20
    (1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
    (2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
    (4096, "4b007901b765489abead49d926f721d065a429c1"),
])
def test_pbkdf2_answer_against_rfc6070(iterations, derived):
    answer = secret_key_answer(b"password", NONCE, DIGEST, HashCode.PBKDF2_HMAC_SHA1, salt=b"salt",
                               iterations=iterations, key_bits=160)
    mac = hmac.new(bytes.fromhex(derived), NONCE + DIGEST, "sha1").digest()
    # Util.constructPbkdf2Encoding: salt, iterations, key length (bits), mac, after the 0x22 code byte.
    assert answer == u8(0x22) + blob(b"salt") + u32(iterations) + u32(160) + blob(mac)
    assert verify_secret_key_answer(b"password", NONCE, DIGEST, answer)
    assert SecretKeyAnswer.from_bytes(answer) == SecretKeyAnswer(HashCode.PBKDF2_HMAC_SHA1, mac, b"salt",
                                                                 iterations, 160)


def test_pbkdf2_password_bytes_follow_java_char_conversion():
    # Handle.Net maps each key byte to a char; Java's PBKDF2 then encodes chars as UTF-8.
    secret = b"p\xe4ss\xff"
    kdf = PBKDF2HMAC(algorithm=hashes.SHA1(), length=20, salt=b"0123456789abcdef", iterations=10)
    key = kdf.derive(b"p\xc3\xa4ss\xc3\xbf")
    answer = secret_key_answer(secret, NONCE, DIGEST, HashCode.PBKDF2_HMAC_SHA1, salt=b"0123456789abcdef",
                               iterations=10)
    assert SecretKeyAnswer.from_bytes(answer).mac == hmac.new(key, NONCE + DIGEST, "sha1").digest()


@pytest.mark.parametrize("code", [HashCode.MD5, HashCode.SHA1, HashCode.SHA256, HashCode.HMAC_SHA1,
                                  HashCode.HMAC_SHA256, HashCode.PBKDF2_HMAC_SHA1])
def test_every_code_verifies_and_tampering_fails(code):
    answer = secret_key_answer(SECRET, NONCE, DIGEST, code, salt=b"s" * 16, iterations=50)
    assert answer[0] == code
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, answer)
    assert not verify_secret_key_answer(b"wrong", NONCE, DIGEST, answer)
    assert not verify_secret_key_answer(SECRET, NONCE[::-1], DIGEST, answer)
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST[::-1], answer)
    for i in range(len(answer)):
        if i == 0 and code == HashCode.MD5:
            continue                  # code 0 is MD5 too (Handle.Net's old-format alias)
        bad = bytearray(answer)
        bad[i] ^= 0x01
        assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, bytes(bad)), i
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, answer[:-1])
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, answer, allowed=frozenset({HashCode.HMAC_SHA1})) \
        or code == HashCode.HMAC_SHA1


def test_pbkdf2_bounds_protect_the_verifier():
    costly = secret_key_answer(SECRET, NONCE, DIGEST, HashCode.PBKDF2_HMAC_SHA1, salt=b"s", iterations=200)
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, costly)
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, costly, max_iterations=199)
    huge = u8(0x22) + blob(b"s") + u32(0xFFFFFFFF) + u32(160) + blob(bytes(20))
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, huge)
    odd_bits = u8(0x22) + blob(b"s") + u32(1) + u32(12) + blob(bytes(20))
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, odd_bits)
    for garbage in (b"", b"\x99" + bytes(20), u8(0x22) + u32(100)):
        assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, garbage)
    with pytest.raises(ValueError, match="salt"):
        secret_key_answer(SECRET, NONCE, DIGEST, HashCode.PBKDF2_HMAC_SHA1)


@pytest.mark.parametrize(("version", "suggested", "code"), [
    ((2, 3), (2, 11), HashCode.SHA1),
    ((2, 6), (2, 11), HashCode.SHA1),
    ((2, 7), (2, 7), HashCode.PBKDF2_HMAC_SHA1),
    ((2, 10), (2, 11), HashCode.PBKDF2_HMAC_SHA1),
    ((2, 11), (2, 6), HashCode.SHA1),
    ((2, 1), (2, 1), HashCode.SHA1),
])
def test_secret_key_code_is_the_lower_version(version, suggested, code):
    assert secret_key_code(version, suggested) == code


@pytest.mark.parametrize(("name", "code"), [
    ("handlenet-8.1.4_tcp_resolve.req.bin", HashCode.SHA1),           # challenge in 2.3
    ("handlenet-8.1.4_tcp_resolve-v2.10.req.bin", HashCode.PBKDF2_HMAC_SHA1),
])
def test_challenge_flow_end_to_end(name, code):
    now = 1_790_000_000
    request = decode(fixture(name))
    # Server: challenge the request; the digest always rides along.
    challenge = decode(encode(make_reply(request, Challenge(NONCE), now=now)))
    assert challenge.response_code == RC.AUTHENTICATION_NEEDED and challenge.body == Challenge(NONCE)
    assert challenge.request_digest is not None and challenge.request_digest.matches(request)
    # Client: answer as Handle.Net would for this challenge's versions.
    chosen = secret_key_code(challenge.version, challenge.envelope.suggested_version)
    assert chosen == code
    answer = secret_key_answer(SECRET, NONCE, challenge.request_digest.digest, chosen, salt=b"0" * 16)
    body = ChallengeAnswerRequest("HS_SECKEY", "88.118.8/ADMIN", 300, answer)
    sent = decode(encode(make_request(body, request_id=request.request_id + 1, now=now, version=request.version)))
    assert sent.op_code is OpCode.CHALLENGE_RESPONSE and sent.body == body
    # Server: check it (directly, or via a 201 to the key's server).
    assert verify_secret_key_answer(SECRET, NONCE, challenge.request_digest.digest, sent.body.answer)
    verify = VerifyChallengeRequest(body.key_handle, body.key_index, NONCE, challenge.request_digest.digest,
                                    sent.body.answer)
    assert VerifyChallengeRequest.from_bytes(verify.to_bytes()) == verify


def test_public_key_answer_layout_and_signature():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    signature = key.sign(NONCE + DIGEST, padding.PKCS1v15(), hashes.SHA256())
    answer = PublicKeyAnswer("SHA256", signature).to_bytes()
    assert answer == s("SHA256") + blob(signature)
    parsed = PublicKeyAnswer.from_bytes(answer)
    key.public_key().verify(parsed.signature, NONCE + DIGEST, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(Exception) as err:
        PublicKeyAnswer.from_bytes(answer + b"\x00")
    assert type(err.value).__name__ == "HandleProtocolError"
