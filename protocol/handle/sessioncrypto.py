"""Session key agreement and session encryption, as Handle.Net 9 does them.

Followed: ``HandleServer.doSessionSetup``/``doKeyExchange`` (server side),
``HandleResolver.setupSessionWithServer`` (client side), ``GenericProvider``
(``getKeyFromDH``, ``getDESKeyFromDH``, ``getCipher``, ``generateSecretKey``),
``SessionInfo.encryptBuffer``/``decryptBuffer`` and ``Util.encrypt``/``decrypt``
with RSA keys, read in Handle.Net's sources and the IDPointer SDK's
CNRI-derived copy. The credential functions of :mod:`protocol.handle.signing`
and the key encoding of :mod:`protocol.handle.keys` are importable from here
too. No I/O, no clock; randomness only where a fresh key or IV
is made, and each of those can be passed in.

What each key exchange mode puts in :class:`SessionSetupResponse.data`:

* ``DH``: from 2.4, u32 cipher + the server's ``DH_PUB_KEY`` (same p and g as
  the client's); before 2.4 the key alone and the cipher is DES. Both sides
  derive the key from the shared secret ``g^xy mod p``, written big-endian
  over as many bytes as p: AES takes 32 bytes after skipping leading zero
  bytes (while more than 32 remain), DES the first 8 and DESede the first 24
  bytes with the DES parity bits set. See :func:`dh_server_exchange`,
  :func:`dh_client_keypair`, :func:`dh_client_session_key`.
* ``CIPHER_CLIENT``/``CIPHER_HDL``: the session key encrypted (RSA, PKCS#1
  v1.5, :func:`rsa_encrypt_session_key`) with the client's public key; from
  2.2 the plaintext is u32 cipher + key, before it the bare key and DES
  (:func:`pack_session_key`/:func:`unpack_session_key`).
* ``CIPHER_SERVER``: the server's ``RSA_PUB_KEY``; the client answers with
  opCode 402 carrying its key encrypted to that key, which Handle.Net's
  server reads as u32 cipher + key from 2.2. (Handle.Net's own client sends
  the bare key there; :func:`unpack_session_key` reads both.)

Which version decides: Handle.Net's server looks at the request's suggested
version, which is also the version it answers in; its client looks at the
reply's version. Pass the version of the reply (:func:`dh_server_exchange`,
the server's :func:`pack_session_key`), of the 402 request (the server's
:func:`unpack_session_key`), or of the reply received (client).

The session key is also the MAC key (``protocol.handle.signing``), whole:
32 bytes for a DH AES key although AES encryption uses its first 16 bytes.

Session encryption (``SessionInfo.encryptBuffer``; the version is the
session's, fixed at setup): the whole message after the envelope (header,
body, credential length, credential; the MAC is made before encrypting) is
encrypted and the envelope gets the ENCRYPTED flag (0x40) and the new
length; UDP splits the encrypted message. From 2.4: CBC with PKCS#5 padding
and a fresh IV written before the ciphertext; before 2.4: ECB, no IV. AES is
always AES-128 (keys longer than 16 bytes are cut), DES takes the key's
first 8 bytes, DESede its first 24. (``Util.encrypt(byte[], byte[], int)``,
the PBKDF2 scheme, is for private key files, not for sessions.)
"""

from __future__ import annotations

import os
import secrets
import warnings
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import padding as sympad
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol.handle.codes import EnvFlag, Version, at_least
from protocol.handle.envelope import ENVELOPE_SIZE, Envelope
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits
from protocol.handle.keys import OAKLEY_GROUP_2_G, OAKLEY_GROUP_2_P, DHPublicKey, load_public_key, public_key_bytes
from protocol.handle.session import SessionCipher
from protocol.handle.signing import mac_credential, sign, verify_mac, verify_signature

try:                                   # cryptography >= 43
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:                    # pragma: no cover - cryptography 42
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

__all__ = [   # with the credential and key functions, for one import
    "DH_EXPONENT_BITS", "KEY_SIZES", "DHPrivateKey", "new_session_key", "dh_client_keypair", "dh_server_exchange",
    "dh_client_session_key", "pack_session_key", "unpack_session_key", "rsa_encrypt_session_key",
    "rsa_decrypt_session_key", "encrypt_message", "decrypt_message", "encrypt_wire", "decrypt_wire",
    "mac_credential", "verify_mac", "sign", "verify_signature", "public_key_bytes", "load_public_key",
    "DHPublicKey", "OAKLEY_GROUP_2_P", "OAKLEY_GROUP_2_G",
]

DH_EXPONENT_BITS = 256     # private exponents: 2x the strength of a 2048-bit group (NIST SP 800-56A)
KEY_SIZES = {SessionCipher.DES: (8,), SessionCipher.DESEDE: (24,), SessionCipher.AES: (16, 32)}
_CODES = frozenset(int(c) for c in SessionCipher)
_NEW_KEY_BYTES = {SessionCipher.DES: 8, SessionCipher.DESEDE: 24, SessionCipher.AES: 32}


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _cipher(value: int) -> SessionCipher:
    try:
        return SessionCipher(value)
    except ValueError:
        raise HandleProtocolError(f"unknown session cipher {value}") from None


def _with_parity(key: bytes) -> bytes:
    """DES odd parity in each byte's low bit (JDK ``DESKeyGenerator``)."""
    out = bytearray()
    for b in key:
        b &= 0xFE
        out.append(b | ((bin(b).count("1") & 1) ^ 1))
    return bytes(out)


def new_session_key(cipher: SessionCipher) -> bytes:
    """A fresh random session key: 8 bytes (DES, parity set), 24 (DESede),
    32 (AES; encryption uses the first 16, the MAC all 32)."""
    key = secrets.token_bytes(_NEW_KEY_BYTES[SessionCipher(cipher)])
    return key if cipher == SessionCipher.AES else _with_parity(key)


# ------------------------------------------------------------------ Diffie-Hellman

@dataclass(frozen=True, slots=True)
class DHPrivateKey:
    """One side's Diffie-Hellman private value and its public key."""

    public: DHPublicKey
    x: int = field(repr=False)


def _keypair(p: int, g: int, private_value: int | None) -> DHPrivateKey:
    x = private_value
    if x is None:
        x = secrets.randbits(DH_EXPONENT_BITS) | 1 << (DH_EXPONENT_BITS - 1)
    if not 2 <= x <= p - 2:
        raise ValueError("Diffie-Hellman private value outside 2..p-2")
    return DHPrivateKey(DHPublicKey(pow(g, x, p), p, g), x)


def dh_client_keypair(p: int = OAKLEY_GROUP_2_P, g: int = OAKLEY_GROUP_2_G, *,
                      private_value: int | None = None) -> tuple[DHPrivateKey, bytes]:
    """A client's key pair in group (p, g), by default the 1024-bit Oakley
    group 2 that Handle.Net clients use: the private key (keep it for
    :func:`dh_client_session_key`) and the ``DH_PUB_KEY`` bytes to send as
    :attr:`SessionSetupRequest.public_key`."""
    DHPublicKey(2, p, g).check()
    private = _keypair(p, g, private_value)
    return private, public_key_bytes(private.public)


def _dh_key(shared: int, p: int, cipher: SessionCipher) -> bytes:
    """``GenericProvider.getKeyFromDH`` without the algorithm prefix, from the
    shared secret padded to the size of p as the JDK's ``generateSecret`` gives it."""
    secret = shared.to_bytes((p.bit_length() + 7) // 8, "big")
    if cipher == SessionCipher.AES:
        i = 0
        while i + 32 < len(secret) and secret[i] == 0:
            i += 1
        return secret[i:i + 32]
    return _with_parity(secret[:8] if cipher == SessionCipher.DES else secret[:24])


def _load_dh(data: bytes) -> DHPublicKey:
    key = load_public_key(data)
    if not isinstance(key, DHPublicKey):
        raise HandleProtocolError("the exchange key is not a DH_PUB_KEY")
    return key


def dh_server_exchange(client_key: bytes, cipher: SessionCipher, version: Version, *,
                       private_value: int | None = None) -> tuple[bytes, bytes]:
    """Server side of a DH session setup: from the client's ``DH_PUB_KEY``
    (the request's ``public_key``) the reply's data and the session key.
    ``version`` is the reply's: before 2.4 the data is the server key alone
    and the key is DES whatever ``cipher`` says. Groups outside 1024..2048
    bits, g or y outside 2..p-2 raise :class:`HandleProtocolError`. The
    arithmetic is CPython's: about 2 ms at 1024 bits, 6 ms at 2048."""
    client = _load_dh(client_key)
    mine = _keypair(client.p, client.g, private_value)
    shared, public = pow(client.y, mine.x, client.p), public_key_bytes(mine.public)
    if not at_least(version, (2, 4)):
        return public, _dh_key(shared, client.p, SessionCipher.DES)
    cipher = SessionCipher(cipher)
    return _u32(cipher) + public, _dh_key(shared, client.p, cipher)


def dh_client_session_key(private: DHPrivateKey, data: bytes, version: Version) -> tuple[SessionCipher, bytes]:
    """Client side: the cipher and session key from the reply's data
    (``version`` is the reply's, as ``HandleResolver`` reads it). The server's
    key must be in the client's group."""
    if at_least(version, (2, 4)):
        if len(data) < 4:
            raise HandleProtocolError("DH session setup data shorter than its cipher code")
        cipher, server = _cipher(int.from_bytes(data[:4], "big")), _load_dh(data[4:])
    else:
        cipher, server = SessionCipher.DES, _load_dh(data)
    if (server.p, server.g) != (private.public.p, private.public.g):
        raise HandleProtocolError("the server's DH key is not in the client's group")
    return cipher, _dh_key(pow(server.y, private.x, server.p), server.p, cipher)


# ------------------------------------------------------------------ RSA key transport

def _check_key(key: bytes, cipher: SessionCipher) -> None:
    sizes = KEY_SIZES[SessionCipher(cipher)]
    if len(key) not in sizes:
        raise ValueError(f"a {SessionCipher(cipher).name} session key is {sizes} bytes, not {len(key)}")


def pack_session_key(cipher: SessionCipher, key: bytes, version: Version) -> bytes:
    """What goes under RSA: from 2.2 u32 cipher + key (``generateSecretKey``'s
    form), before 2.2 the bare key, DES being the only cipher then."""
    _check_key(key, cipher)
    if at_least(version, (2, 2)):
        return _u32(SessionCipher(cipher)) + bytes(key)
    if cipher != SessionCipher.DES:
        raise ValueError("before 2.2 the session cipher is DES")
    return bytes(key)


def unpack_session_key(plain: bytes, version: Version) -> tuple[SessionCipher, bytes]:
    """The cipher and key of a decrypted :func:`pack_session_key`: before 2.2
    a DES key; from 2.2 u32 cipher + key, or a bare key (what Handle.Net's
    own client sends in opCode 402 even from 2.2) told by its length: 8 DES,
    24 DESede, 16 or 32 AES (the prefixed form is 12, 28, 20 or 36 bytes).
    Anything else raises :class:`HandleProtocolError`."""
    plain = bytes(plain)
    if not at_least(version, (2, 2)):
        if len(plain) < 8:
            raise HandleProtocolError("DES session key shorter than 8 bytes")
        return SessionCipher.DES, plain
    code = int.from_bytes(plain[:4], "big") if len(plain) >= 4 else 0
    if code in _CODES and len(plain) - 4 in KEY_SIZES[SessionCipher(code)]:
        return SessionCipher(code), plain[4:]
    for cipher, sizes in KEY_SIZES.items():
        if len(plain) in sizes:
            return cipher, plain
    raise HandleProtocolError(f"session key of {len(plain)} bytes fits no cipher")


def rsa_encrypt_session_key(public_key: rsa.RSAPublicKey | bytes, plain: bytes, version: Version) -> bytes:
    """``Util.encrypt(PublicKey, byte[], major, minor)``: RSA PKCS#1 v1.5 of
    ``plain`` (a :func:`pack_session_key`), the same in every version.
    ``public_key`` may be Handle-encoded bytes (a request's ``public_key``)."""
    key = load_public_key(public_key) if isinstance(public_key, (bytes, bytearray, memoryview)) else public_key
    if not isinstance(key, rsa.RSAPublicKey):
        raise HandleProtocolError("session keys are encrypted with RSA keys only")
    try:
        return key.encrypt(bytes(plain), padding.PKCS1v15())
    except ValueError as e:
        raise HandleProtocolError(f"cannot encrypt the session key: {e}") from None


def rsa_decrypt_session_key(private_key: rsa.RSAPrivateKey, data: bytes, version: Version) -> bytes:
    """``Util.decrypt(PrivateKey, byte[], major, minor)``: the plaintext (read
    it with :func:`unpack_session_key`); :class:`HandleProtocolError` when it
    does not decrypt. With OpenSSL's implicit rejection (the Marvin
    countermeasure) a ciphertext of the right length with bad padding gives
    pseudo-random bytes instead of an error: :func:`unpack_session_key`
    refuses most of them, and a wrong key fails the session's first MAC."""
    try:
        return private_key.decrypt(bytes(data), padding.PKCS1v15())
    except ValueError:
        raise HandleProtocolError("cannot decrypt the session key") from None


# ------------------------------------------------------------------ session encryption

def _algorithm(key: bytes, cipher: SessionCipher):
    """``GenericProvider.getCipher``'s key handling."""
    cipher = SessionCipher(cipher)
    if cipher == SessionCipher.AES:
        if len(key) < 16:
            raise ValueError("an AES session key has at least 16 bytes")
        return algorithms.AES(key[:16])
    need = 8 if cipher == SessionCipher.DES else 24
    if len(key) < need:
        raise ValueError(f"a {cipher.name} session key has at least {need} bytes")
    return TripleDES(key[:8] * 3 if cipher == SessionCipher.DES else key[:24])   # K1=K2=K3: single DES


def encrypt_message(key: bytes, cipher: SessionCipher, version: Version, plaintext: bytes, *,
                    iv: bytes | None = None) -> bytes:
    """``SessionInfo.encryptBuffer``: ``iv + CBC(plaintext)`` from 2.4 (``iv``
    fresh and random unless given), ``ECB(plaintext)`` before."""
    alg = _algorithm(key, cipher)
    block = alg.block_size // 8
    padder = sympad.PKCS7(alg.block_size).padder()
    padded = padder.update(bytes(plaintext)) + padder.finalize()
    if not at_least(version, (2, 4)):
        enc = Cipher(alg, modes.ECB()).encryptor()
        return enc.update(padded) + enc.finalize()
    iv = os.urandom(block) if iv is None else bytes(iv)
    if len(iv) != block:
        raise ValueError(f"the IV is {block} bytes")
    enc = Cipher(alg, modes.CBC(iv)).encryptor()
    return iv + enc.update(padded) + enc.finalize()


def decrypt_message(key: bytes, cipher: SessionCipher, version: Version, data: bytes) -> bytes:
    """``SessionInfo.decryptBuffer``; wrong length, key or padding raise
    :class:`HandleProtocolError`."""
    alg = _algorithm(key, cipher)
    block = alg.block_size // 8
    data = bytes(data)
    if at_least(version, (2, 4)):
        iv, data = data[:block], data[block:]
        mode = modes.CBC(iv) if len(iv) == block else None
    else:
        mode = modes.ECB()
    if mode is None or not data or len(data) % block:
        raise HandleProtocolError(f"encrypted message of {len(data)} bytes is not whole {block}-byte blocks")
    dec = Cipher(alg, mode).decryptor()
    unpadder = sympad.PKCS7(alg.block_size).unpadder()
    try:
        return unpadder.update(dec.update(data) + dec.finalize()) + unpadder.finalize()
    except ValueError:
        raise HandleProtocolError("cannot decrypt the message (wrong session key?)") from None


def encrypt_wire(key: bytes, cipher: SessionCipher, version: Version, wire: bytes, *,
                 iv: bytes | None = None) -> bytes:
    """Envelope + message in, envelope (ENCRYPTED set, new length) + encrypted
    message out, as Handle.Net sends it (split it for UDP afterwards)."""
    env = Envelope.from_bytes(wire, check_version=False, limits=Limits(max_message_bytes=1 << 32))
    if len(wire) != ENVELOPE_SIZE + env.message_length:
        raise ValueError("wire is not one envelope + message")
    sealed = encrypt_message(key, cipher, version, bytes(wire[ENVELOPE_SIZE:]), iv=iv)
    return env.with_(flags=env.flags | EnvFlag.ENCRYPTED, message_length=len(sealed)).to_bytes() + sealed


def decrypt_wire(key: bytes, cipher: SessionCipher, version: Version, wire: bytes,
                 limits: Limits = DEFAULT_LIMITS) -> bytes:
    """An encrypted envelope + message (one TCP message, a reassembled UDP
    set) back to plain envelope + message for ``decode``."""
    env = Envelope.from_bytes(wire, limits)
    try:
        if not env.encrypted:
            raise HandleProtocolError("the message is not encrypted")
        if len(wire) != ENVELOPE_SIZE + env.message_length:
            raise HandleProtocolError(f"have {len(wire)} bytes, envelope + message are "
                                      f"{ENVELOPE_SIZE + env.message_length}")
        plain = decrypt_message(key, cipher, version, bytes(wire[ENVELOPE_SIZE:]))
    except HandleProtocolError as e:
        raise e.with_context(envelope=env)
    flags = EnvFlag(int(env.flags) & ~int(EnvFlag.ENCRYPTED))
    return env.with_(flags=flags, message_length=len(plain)).to_bytes() + plain
