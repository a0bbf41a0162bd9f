"""Admin keys for the key-identity tests: PEM in the forms operators have,
and a Handle public-key challenge answer signed with the private key."""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa

from protocol.handle import PUBLIC_KEY, ChallengeAnswerRequest, PublicKeyAnswer, challenge_data

NONCE = bytes(range(16))
DIGEST = bytes(range(100, 132))


@functools.cache
def rsa_key(bits: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """The ``n``-th RSA test key of ``bits`` (made once per test run)."""
    return rsa.generate_private_key(65537, bits)


@functools.cache
def dsa_key(bits: int = 2048) -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(bits)


def public_pem(key, fmt: str = "spki") -> bytes:
    """``spki``: -----BEGIN PUBLIC KEY-----; ``pkcs1``: -----BEGIN RSA PUBLIC KEY-----."""
    form = serialization.PublicFormat.PKCS1 if fmt == "pkcs1" else serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(serialization.Encoding.PEM, form)


def private_pem(key, fmt: str = "pkcs8", password: bytes | None = None) -> bytes:
    form = serialization.PrivateFormat.TraditionalOpenSSL if fmt == "traditional" else \
        serialization.PrivateFormat.PKCS8
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, form, enc)


def ec_public_pem() -> bytes:
    return public_pem(ec.generate_private_key(ec.SECP256R1()))


def key_answer(key, handle: str, index: int, nonce: bytes = NONCE, digest: bytes = DIGEST,
               hash_alg: str = "SHA256") -> ChallengeAnswerRequest:
    """The answer a Handle client holding ``key`` gives to the challenge ``nonce``
    on a request whose digest is ``digest``, as ``index:handle``."""
    data = challenge_data(nonce, digest)
    alg = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256}[hash_alg]()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), alg)
    else:
        signature = key.sign(data, alg)
    return ChallengeAnswerRequest(PUBLIC_KEY, handle, index, PublicKeyAnswer(hash_alg, signature).to_bytes())
