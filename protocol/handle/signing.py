"""Credentials made and checked: session MACs (``HS_MAC``) and server
signatures (``HS_SIGNED``), as Handle.Net 9's ``AbstractMessage.signMessage``
and ``verifyMessage`` (both the ``byte[]`` key and the ``Signature``/
``PublicKey`` forms) and ``Util.doMac``/``doDigest``/``getSigIdFromHashAlgId``
do them, read in the IDPointer SDK's CNRI-derived copy.

Both credentials: version 0, flags 0, signer handle "", signer index = the
session counter (0 outside a session), then the hash algorithm and the
signature. They cover ``header_and_body(msg)`` with the envelope fields that
:func:`protocol.handle.credential.signed_data` (HS_SIGNED) or the MAC
rules below put before it, taken from the message's own
envelope version (and its suggested version, 0.0 read as the version).

HS_MAC by version (``signMessage(byte[])``):

* 2.7 and later: ``HMAC-SHA256`` over major, minor, [from 2.8 suggested
  major, minor], u32 session id, u32 request id, u32 counter, header + body.
* 2.5 and 2.6: a plain digest (SHA-1; named ``SHA1`` in 2.6 and by the
  one byte 0x02 in 2.5) of what Handle.Net's misplaced writes leave in its
  buffer: the key's first four bytes, header + body, the key, then
  ``len(key) + 10`` zero bytes; counter and ids are not covered.
* before 2.5: the one byte 0x02 and SHA-1(key + header + body + key).

A verifier (``verifyMessage(byte[])``) recomputes with the algorithm the
credential names, in the form the message's version implies: ``HMAC-SHA1``,
``HMAC-SHA256`` (case and punctuation ignored), ``SHA1``/``SHA-1``,
``SHA-256``/``SHA256``, ``MD5`` (a key-sandwich digest) or a one-byte code.

HS_SIGNED (``signMessage(Signature)``): the server signs with SHA-256 from
2.7 (DSA keys: from 2.11), SHA-1 before (``Util.getDefaultSigId``), RSA
PKCS#1 v1.5 or DSA; the algorithm is named as ``getHashAlgIdFromSigId``
names it: ``SHA-256`` or ``SHA1``. Verifiers accept ``HS_SIGNED`` and the
old ``HS_DSAPUBKEY``, and ``SHA1``, ``SHA-1``, ``SHA-256``, ``SHA256``,
``MD5`` (RSA only) or a one-byte code.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from protocol.handle.challenge import _plain_mac
from protocol.handle.codes import HashCode, at_least
from protocol.handle.credential import MAC, SIGNED, Credential, signed_data
from protocol.handle.keys import load_public_key
from protocol.handle.message import Message, header_and_body
from protocol.wire import Reader, WireError, Writer

OLD_SIGNED = "HS_DSAPUBKEY"
HMAC_SHA256 = "HMAC-SHA256"
SHA1 = "SHA1"               # Handle.Net Common.HASH_ALG_SHA1
SHA256 = "SHA-256"          # Handle.Net Common.HASH_ALG_SHA256

_DIGESTS = {b"SHA1": HashCode.SHA1, b"SHA-1": HashCode.SHA1, b"MD5": HashCode.MD5,
            b"SHA-256": HashCode.SHA256, b"SHA256": HashCode.SHA256}
_HMACS = {b"HMACSHA1": HashCode.HMAC_SHA1, b"HMACSHA256": HashCode.HMAC_SHA256}
_PLAIN = {HashCode.MD5_OLD_FORMAT: "md5", HashCode.MD5: "md5", HashCode.SHA1: "sha1", HashCode.SHA256: "sha256"}


def _u32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def _section(cred: Credential | None, types: tuple[str, ...]) -> tuple[bytes, bytes] | None:
    """(hash algorithm bytes, signature) of a credential of one of ``types``;
    like Handle.Net, bytes after the signature are not looked at."""
    if cred is None or cred.type not in types:
        return None
    try:
        r = Reader(cred.section)
        return r.blob(), r.blob()
    except WireError:
        return None


# ------------------------------------------------------------------ HS_MAC

def _mac_code(alg: bytes) -> HashCode | None:
    """``Util.doMac(byte[] ...)``'s reading of an algorithm name."""
    if len(alg) == 1:
        try:
            return HashCode(alg[0])
        except ValueError:
            return None
    if alg in _DIGESTS:
        return _DIGESTS[alg]
    return _HMACS.get(bytes(c for c in alg if c < 0x80 and chr(c).isalnum()).upper())


def _broken_25_26(alg: bytes, hb: bytes, key: bytes, msg: Message, counter: int) -> bytes | None:
    """``brokenTwoFiveTwoSixSignature``: Handle.Net's writes replayed on a
    buffer of its size (``offset = writeInt(...)`` keeps resetting the
    offset to 4), then ``Util.doDigest`` by ``alg``."""
    code = HashCode(alg[0]) if len(alg) == 1 and alg[0] in _PLAIN else _DIGESTS.get(alg)
    if code not in _PLAIN:
        return None
    buf = bytearray(2 * len(key) + len(hb) + 14)
    buf[0:len(key)] = key
    off = len(key)
    buf[off:off + 2] = bytes(msg.version)
    buf[off + 2:off + 6] = _u32(msg.envelope.session_id)
    buf[4:8] = _u32(msg.envelope.request_id)
    buf[4:8] = _u32(counter)
    buf[4:4 + len(hb)] = hb
    buf[4 + len(hb):4 + len(hb) + len(key)] = key
    return hashlib.new(_PLAIN[code], bytes(buf)).digest()


def _mac_data(msg: Message, counter: int, hb: bytes) -> bytes:
    """What ``verifyMessage(byte[])`` MACs outside 2.5 and 2.6: before 2.5
    header + body alone, from 2.7 the envelope fields first."""
    if not at_least(msg.version, (2, 5)):
        return hb
    w = Writer().u8(msg.version[0]).u8(msg.version[1])
    if at_least(msg.version, (2, 8)):
        suggested = msg.envelope.suggested_version
        w.u8(suggested[0]).u8(suggested[1])
    env = msg.envelope
    return w.getvalue() + _u32(env.session_id) + _u32(env.request_id) + _u32(counter) + hb


def _mac(alg: bytes, key: bytes, msg: Message, counter: int) -> bytes | None:
    hb = header_and_body(msg)
    if at_least(msg.version, (2, 5)) and not at_least(msg.version, (2, 7)):
        return _broken_25_26(alg, hb, key, msg, counter)
    code = _mac_code(alg)
    if code is None or code == HashCode.PBKDF2_HMAC_SHA1:
        return None          # Handle.Net would draw a random salt: never equal
    return _plain_mac(code, _mac_data(msg, counter, hb), key)


def mac_credential(key: bytes, msg: Message, counter: int) -> Credential:
    """The HS_MAC credential Handle.Net puts on ``msg`` in a session with
    ``key``; ``counter`` is the session counter (a client's count from 1)."""
    if not 0 <= counter <= 0xFFFFFFFF:
        raise ValueError("the session counter is 32-bit unsigned")
    if at_least(msg.version, (2, 7)):
        alg = HMAC_SHA256.encode()
    elif at_least(msg.version, (2, 6)):
        alg = SHA1.encode()
    else:
        alg = bytes([HashCode.SHA1])
    mac = _mac(alg, bytes(key), msg, counter)
    section = Writer().blob(alg).blob(mac).getvalue()
    return Credential(MAC, section, "", counter)


def verify_mac(key: bytes, msg: Message) -> int | None:
    """The session counter of ``msg``'s HS_MAC when it is right for ``key``,
    else None (no credential, another type, unknown algorithm, wrong MAC)."""
    parsed = _section(msg.credential, (MAC,))
    if parsed is None:
        return None
    alg, mac = parsed
    counter = msg.credential.signer_index
    expected = _mac(alg, bytes(key), msg, counter)
    if expected is None or not hmac.compare_digest(expected, mac):
        return None
    return counter


# ------------------------------------------------------------------ HS_SIGNED

def _signed_bytes(msg: Message, counter: int) -> bytes:
    env = msg.envelope
    return signed_data(header_and_body(msg), msg.version, env.suggested_version, env.session_id,
                       env.request_id, counter)


def sign(private_key: rsa.RSAPrivateKey | dsa.DSAPrivateKey, msg: Message, counter: int = 0) -> Credential:
    """The HS_SIGNED credential a Handle.Net server puts on ``msg`` (send it
    as ``msg.with_(credential=...)``); ``counter`` is the session counter."""
    if not 0 <= counter <= 0xFFFFFFFF:
        raise ValueError("the session counter is 32-bit unsigned")
    data = _signed_bytes(msg, counter)
    if isinstance(private_key, rsa.RSAPrivateKey):
        sha256 = at_least(msg.version, (2, 7))
        sig = private_key.sign(data, padding.PKCS1v15(), hashes.SHA256() if sha256 else hashes.SHA1())
    elif isinstance(private_key, dsa.DSAPrivateKey):
        sha256 = at_least(msg.version, (2, 11))
        sig = private_key.sign(data, hashes.SHA256() if sha256 else hashes.SHA1())
    else:
        raise TypeError(f"Handle servers sign with RSA or DSA keys, not {type(private_key).__name__}")
    return Credential.signed(SHA256 if sha256 else SHA1, sig, signer_index=counter)


def _hash(alg: bytes) -> hashes.HashAlgorithm | None:
    code = HashCode(alg[0]) if len(alg) == 1 and alg[0] in (1, 2, 3) else _DIGESTS.get(alg)
    return {HashCode.SHA1: hashes.SHA1(), HashCode.SHA256: hashes.SHA256(), HashCode.MD5: hashes.MD5()}.get(code)


def verify_signature(public_key: bytes | rsa.RSAPublicKey | dsa.DSAPublicKey, msg: Message) -> bool:
    """Whether ``msg`` carries a valid HS_SIGNED credential of ``public_key``
    (Handle-encoded bytes, e.g. the server key of an HS_SITE, or a loaded
    key). A key that cannot be read raises :class:`HandleProtocolError`;
    anything wrong with the message's credential is simply False."""
    key = load_public_key(public_key) if isinstance(public_key, (bytes, bytearray, memoryview)) else public_key
    parsed = _section(msg.credential, (SIGNED, OLD_SIGNED))
    if parsed is None:
        return False
    alg, sig = parsed
    hash_ = _hash(alg)
    if hash_ is None:
        return False
    data = _signed_bytes(msg, msg.credential.signer_index)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), hash_)
        elif isinstance(key, dsa.DSAPublicKey) and not isinstance(hash_, hashes.MD5):
            key.verify(sig, data, hash_)
        else:
            return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True

