"""Admin public keys: a PEM file in, an HS_PUBKEY value out.

One function, :func:`public_key_value`, behind the CLI and REST alike. It
takes the PEM an operator has at hand (``openssl pkey -pubout`` writes
SubjectPublicKeyInfo, ``-----BEGIN PUBLIC KEY-----``; ``openssl rsa
-RSAPublicKey_out`` writes PKCS#1, ``-----BEGIN RSA PUBLIC KEY-----``) for an
RSA or DSA key, and gives the value in the Handle.Net encoding
(``protocol.valuetypes.PublicKey``), public-read like Handle.Net's admin
keys. Anything else is refused with :class:`InvalidValue` saying why: a
private key given by mistake, a certificate, another kind of key, a weak
key, text that is no PEM at all.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from protocol.values import HandleValue
from protocol.valuetypes import PublicKey

from .errors import InvalidValue

PUBKEY_TYPE = "HS_PUBKEY"
MIN_KEY_BITS = 2048          # RSA modulus, DSA p: NIST SP 800-131A
MAX_RSA_BITS = 16384         # bounds the work of every signature check
MAX_PEM_BYTES = 16 * 1024    # a 16384-bit RSA public key is under 3 KiB of PEM

_PRIVATE = "PRIVATE KEY-----"


def _text(pem: str | bytes) -> str:
    if isinstance(pem, (bytes, bytearray, memoryview)):
        pem = bytes(pem)
        if len(pem) > MAX_PEM_BYTES:
            raise InvalidValue(f"the public key is over {MAX_PEM_BYTES} bytes: not a PEM public key")
        try:
            pem = pem.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidValue("the public key must be PEM text (-----BEGIN PUBLIC KEY-----), "
                               "not binary data") from None
    if not isinstance(pem, str):
        raise InvalidValue("the public key must be PEM text")
    if len(pem) > MAX_PEM_BYTES:
        raise InvalidValue(f"the public key is over {MAX_PEM_BYTES} bytes: not a PEM public key")
    if not pem.isascii():
        raise InvalidValue("the public key must be PEM text (-----BEGIN PUBLIC KEY-----)")
    return pem


def load_public_key(pem: str | bytes) -> PublicKey:
    """The RSA or DSA public key in ``pem``, in the Handle encoding."""
    text = _text(pem)
    if _PRIVATE in text:
        raise InvalidValue("that is a private key: pass the public key instead "
                           "(openssl pkey -in key.pem -pubout -out key.pub.pem); "
                           "the private key never leaves its owner")
    if "-----BEGIN CERTIFICATE-----" in text:
        raise InvalidValue("that is a certificate: pass its public key "
                           "(openssl x509 -in cert.pem -pubkey -noout)")
    if "-----BEGIN" not in text:
        raise InvalidValue("not a PEM public key (expected -----BEGIN PUBLIC KEY----- "
                           "or -----BEGIN RSA PUBLIC KEY-----)")
    try:
        key = load_pem_public_key(text.encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidValue("not a readable PEM public key (expected -----BEGIN PUBLIC KEY----- "
                           "or -----BEGIN RSA PUBLIC KEY-----)") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_KEY_BITS:
            raise InvalidValue(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are needed")
        if key.key_size > MAX_RSA_BITS:
            raise InvalidValue(f"the RSA key has {key.key_size} bits; at most {MAX_RSA_BITS} are accepted")
        n = key.public_numbers()
        return PublicKey.from_numbers("RSA_PUB_KEY", {"e": n.e, "n": n.n})
    if isinstance(key, dsa.DSAPublicKey):
        if key.key_size < MIN_KEY_BITS:
            raise InvalidValue(f"the DSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are needed")
        n = key.public_numbers()
        p = n.parameter_numbers
        return PublicKey.from_numbers("DSA_PUB_KEY", {"q": p.q, "p": p.p, "g": p.g, "y": n.y})
    kind = "EC" if isinstance(key, ec.EllipticCurvePublicKey) else "these"
    raise InvalidValue(f"{kind} keys are not supported: Handle admin keys (HS_PUBKEY) are RSA or DSA")


def public_key_value(pem: str | bytes, index: int) -> HandleValue:
    """The HS_PUBKEY value at ``index`` holding the key in ``pem`` (public-read,
    admin-writable, as Handle.Net's admin keys)."""
    return HandleValue(index, PUBKEY_TYPE, load_public_key(pem).encode())
