"""Answers to an authentication challenge (RFC 3652 3.5), computed both ways.

The server sends a :class:`~protocol.handle.bodies.Challenge` (nonce, plus
the digest of the challenged request on the message). The client answers with
opCode 200, whose ``answer`` bytes are, as Handle.Net 9 builds them:

* ``HS_SECKEY`` (``SecretKeyAuthenticationInfo.authenticate``): one hash-code
  byte, then ``Util.doMac(code, nonce + request_digest, secret)``. Before 2.7
  the code is 2 (SHA-1) and the MAC is ``SHA1(secret + data + secret)``; from
  2.7 it is 0x22 and the MAC part is ``salt (u32 length + bytes), iterations
  u32, key length in bits u32, HMAC-SHA1(PBKDF2-HMAC-SHA1(secret, salt,
  iterations, bits), data) (u32 length + bytes)``. Which one a client picks:
  the lower of the challenge's version and its suggested version.
* ``HS_PUBKEY`` (``PublicKeyAuthenticationInfo.authenticate``): hash algorithm
  (string, e.g. ``SHA256``) and signature (u32 length + bytes) over
  ``nonce + request_digest``.

A server checks an HS_SECKEY answer as Handle.Net's ``verifyChallenge`` does:
recompute with the code and PBKDF2 parameters the answer names, compare.

Followed: Handle.Net 9 hdllib ``SecretKeyAuthenticationInfo.java``,
``Util.java`` (``doMac``, ``doPbkdf2HmacSHA1``, ``doPBKDF2``,
``constructPbkdf2Encoding``) and ``HandleServer.verifyChallenge``, read in the
CNRI-derived copy ``cn.teleinfo.idpointer.sdk.core`` of the CAICT SDK.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from protocol.handle.codes import HashCode, Version, at_least
from protocol.handle.errors import HandleProtocolError, protocol_errors
from protocol.wire import Reader, Writer

SECRET_KEY = "HS_SECKEY"
PUBLIC_KEY = "HS_PUBKEY"

PBKDF2_ITERATIONS = 10000      # Handle.Net's defaults for a new answer
PBKDF2_KEY_BITS = 160
PBKDF2_SALT_BYTES = 16
MAX_PBKDF2_ITERATIONS = 100_000   # refuse to spend more CPU on one answer
MAX_PBKDF2_KEY_BITS = 1024


def secret_key_code(version: Version, suggested: Version) -> HashCode:
    """The MAC a Handle.Net client uses against a challenge of ``version``
    suggesting ``suggested``: PBKDF2-HMAC-SHA1 from 2.7, SHA-1 from 2.1."""
    lower = min(tuple(version), tuple(suggested))
    return HashCode.PBKDF2_HMAC_SHA1 if at_least(lower, (2, 7)) else HashCode.SHA1


def challenge_data(nonce: bytes, request_digest: bytes) -> bytes:
    """What both answer kinds sign: the nonce, then the request digest."""
    return nonce + request_digest


def _pbkdf2_password(secret: bytes) -> bytes:
    # Handle.Net turns each key byte into a char (b & 0xFF) and Java's
    # PBKDF2WithHmacSHA1 encodes chars as UTF-8: bytes >= 0x80 become two bytes.
    return secret.decode("latin-1").encode("utf-8")


def _plain_mac(code: HashCode, data: bytes, secret: bytes) -> bytes:
    if code in (HashCode.MD5, HashCode.MD5_OLD_FORMAT):
        return hashlib.md5(secret + data + secret).digest()
    if code == HashCode.SHA1:
        return hashlib.sha1(secret + data + secret).digest()
    if code == HashCode.SHA256:
        return hashlib.sha256(secret + data + secret).digest()
    if code == HashCode.HMAC_SHA1:
        return hmac.new(secret, data, "sha1").digest()
    if code == HashCode.HMAC_SHA256:
        return hmac.new(secret, data, "sha256").digest()
    raise ValueError(f"{code!r} is not a plain MAC")


@dataclass(frozen=True, slots=True)
class SecretKeyAnswer:
    """A parsed HS_SECKEY answer: the hash code, the MAC, and for PBKDF2 the
    salt, iteration count and derived key length (bits)."""

    code: HashCode
    mac: bytes
    salt: bytes = b""
    iterations: int = 0
    key_bits: int = 0

    def to_bytes(self) -> bytes:
        w = Writer().u8(int(self.code))
        if self.code == HashCode.PBKDF2_HMAC_SHA1:
            w.blob(self.salt).u32(self.iterations).u32(self.key_bits).blob(self.mac)
        else:
            w.raw(self.mac)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SecretKeyAnswer":
        with protocol_errors():
            r = Reader(data)
            raw_code = r.u8()
            try:
                code = HashCode(raw_code)
            except ValueError:
                raise HandleProtocolError(f"unknown secret key answer hash code {raw_code}") from None
            if code == HashCode.PBKDF2_HMAC_SHA1:
                salt, iterations, bits, mac = r.blob(), r.u32(), r.u32(), r.blob()
                r.expect_end()
                return cls(code, mac, salt, iterations, bits)
            return cls(code, r.raw(r.remaining))


def secret_key_answer(secret: bytes, nonce: bytes, request_digest: bytes, code: HashCode, *,
                      salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS,
                      key_bits: int = PBKDF2_KEY_BITS) -> bytes:
    """The answer bytes a client sends (``ChallengeAnswerRequest.answer``).
    PBKDF2 needs ``salt``: pass fresh random bytes (Handle.Net uses 16)."""
    data = challenge_data(nonce, request_digest)
    if code == HashCode.PBKDF2_HMAC_SHA1:
        if salt is None:
            raise ValueError("a PBKDF2 answer needs a salt")
        if key_bits <= 0 or key_bits % 8:
            raise ValueError("key_bits must be a positive multiple of 8")
        key = hashlib.pbkdf2_hmac("sha1", _pbkdf2_password(secret), salt, iterations, key_bits // 8)
        mac = hmac.new(key, data, "sha1").digest()
        return SecretKeyAnswer(code, mac, salt, iterations, key_bits).to_bytes()
    return SecretKeyAnswer(HashCode(code), _plain_mac(HashCode(code), data, secret)).to_bytes()


def verify_secret_key_answer(secret: bytes, nonce: bytes, request_digest: bytes, answer: bytes, *,
                             allowed: frozenset[HashCode] | None = None,
                             max_iterations: int = MAX_PBKDF2_ITERATIONS) -> bool:
    """Whether ``answer`` proves knowledge of ``secret`` for this challenge.
    ``allowed`` limits the hash codes accepted (default: every one Handle.Net
    accepts); malformed answers and PBKDF2 parameters over the bounds are
    simply wrong answers (False), never exceptions."""
    try:
        parsed = SecretKeyAnswer.from_bytes(answer)
    except HandleProtocolError:
        return False
    if allowed is not None and parsed.code not in allowed:
        return False
    if parsed.code == HashCode.PBKDF2_HMAC_SHA1:
        if not (0 < parsed.iterations <= max_iterations and 0 < parsed.key_bits <= MAX_PBKDF2_KEY_BITS
                and parsed.key_bits % 8 == 0):
            return False
        expected = secret_key_answer(secret, nonce, request_digest, parsed.code, salt=parsed.salt,
                                     iterations=parsed.iterations, key_bits=parsed.key_bits)
        return hmac.compare_digest(expected, answer)
    expected = _plain_mac(parsed.code, challenge_data(nonce, request_digest), secret)
    return hmac.compare_digest(expected, parsed.mac)


@dataclass(frozen=True, slots=True)
class PublicKeyAnswer:
    """A parsed HS_PUBKEY answer: hash algorithm name and signature over
    :func:`challenge_data`."""

    hash_alg: str
    signature: bytes

    def to_bytes(self) -> bytes:
        return Writer().string(self.hash_alg).blob(self.signature).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "PublicKeyAnswer":
        with protocol_errors():
            r = Reader(data)
            answer = cls(r.string(), r.blob())
            r.expect_end()
            return answer
