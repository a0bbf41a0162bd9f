"""Public keys in Handle's own encoding, both ways (Handle.Net ``Util.getBytesFromPublicKey``
and ``Util.getPublicKeyFromBytes``, read in the IDPointer SDK's CNRI-derived ``Util``).

The encoding (the data of an ``HS_PUBKEY`` value, the server key of an
``HS_SITE`` record, the exchange keys of session setup): key type (string),
u16 flags (0), then the key's integers as u32 length + Java
``BigInteger.toByteArray`` bytes: ``RSA_PUB_KEY`` e n, ``DSA_PUB_KEY`` q p g
y, ``DH_PUB_KEY`` y p g. An RSA key ends with four zero bytes more: Handle.Net
allocates room for four u32 lengths and writes three (seen in the HS_SITE
its 9.3.1 server publishes). Readers take the integers as unsigned and, like
Handle.Net, ignore bytes after them.

RSA and DSA keys are ``cryptography`` key objects. A Diffie-Hellman key is
this module's :class:`DHPublicKey` (three integers): ``cryptography`` 50
deprecates finite-field DH (a warning on every use, removal announced) and
runs a primality test on each key it builds, so the session code does its
modular arithmetic itself. The CAICT SDKs' ``SM2_PUB_KEY``/``SM9_PUB_KEY``
are not read (HandleProtocolError, as for any unknown type).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from protocol.handle.errors import HandleProtocolError, protocol_errors
from protocol.valuetypes import PublicKey

RSA = "RSA_PUB_KEY"
DSA = "DSA_PUB_KEY"
DH = "DH_PUB_KEY"

MAX_KEY_BITS = 16384          # largest RSA modulus / DSA prime read
DH_MIN_BITS = 1024            # Diffie-Hellman groups accepted
DH_MAX_BITS = 2048            # Handle.Net uses 1024; every 1024 bits more costs the server about 3x the work

# RFC 2409 section 6.2, the 1024-bit MODP group ("Oakley group 2"): what the
# Handle.Net client's DH key pair (1024 bits, from the JDK) uses.
OAKLEY_GROUP_2_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF", 16)
OAKLEY_GROUP_2_G = 2


@dataclass(frozen=True, slots=True)
class DHPublicKey:
    """A Diffie-Hellman public key: ``y = g^x mod p``."""

    y: int
    p: int
    g: int

    def check(self) -> "DHPublicKey":
        """This key if its group is 1024 to 2048 bits, p odd, and both g and y
        in 2..p-2 (the JDK refuses y outside that range); else
        :class:`HandleProtocolError`."""
        bits = self.p.bit_length()
        if not DH_MIN_BITS <= bits <= DH_MAX_BITS:
            raise HandleProtocolError(f"Diffie-Hellman group of {bits} bits outside {DH_MIN_BITS}..{DH_MAX_BITS}")
        if self.p % 2 == 0:
            raise HandleProtocolError("Diffie-Hellman modulus is even")
        if not 2 <= self.g <= self.p - 2:
            raise HandleProtocolError("Diffie-Hellman generator outside 2..p-2")
        if not 2 <= self.y <= self.p - 2:
            raise HandleProtocolError("Diffie-Hellman public value outside 2..p-2")
        return self


HandlePublicKey = rsa.RSAPublicKey | dsa.DSAPublicKey | DHPublicKey


def public_key_bytes(key: HandlePublicKey) -> bytes:
    """The Handle encoding of an RSA, DSA or Diffie-Hellman public key,
    byte for byte as ``Util.getBytesFromPublicKey`` writes it."""
    if isinstance(key, rsa.RSAPublicKey):
        n = key.public_numbers()
        return PublicKey.from_numbers(RSA, {"e": n.e, "n": n.n}).encode()
    if isinstance(key, dsa.DSAPublicKey):
        n = key.public_numbers()
        pn = n.parameter_numbers
        return PublicKey.from_numbers(DSA, {"q": pn.q, "p": pn.p, "g": pn.g, "y": n.y}).encode()
    if isinstance(key, DHPublicKey):
        return PublicKey.from_numbers(DH, {"y": key.y, "p": key.p, "g": key.g}).encode()
    raise TypeError(f"no Handle encoding for {type(key).__name__}")


def _bits(value: int, what: str) -> int:
    if value.bit_length() > MAX_KEY_BITS:
        raise HandleProtocolError(f"{what} of {value.bit_length()} bits over the limit {MAX_KEY_BITS}")
    return value


def load_public_key(data: bytes) -> HandlePublicKey:
    """The key in Handle-encoded ``data``: an RSA or DSA ``cryptography`` key
    or a checked :class:`DHPublicKey`. Anything malformed, of an unknown
    type, or that ``cryptography`` refuses raises :class:`HandleProtocolError`."""
    with protocol_errors():
        key = PublicKey.decode(bytes(data))
    if not key.known:
        raise HandleProtocolError(f"unsupported public key type {key.key_type[:40]!r}")
    if any(len(part) * 8 > MAX_KEY_BITS + 8 for part in key.parts):
        raise HandleProtocolError(f"public key part over {MAX_KEY_BITS} bits")
    n = key.numbers()
    if key.key_type == DH:
        return DHPublicKey(n["y"], n["p"], n["g"]).check()
    try:
        if key.key_type == RSA:
            return rsa.RSAPublicNumbers(_bits(n["e"], "RSA exponent"), _bits(n["n"], "RSA modulus")).public_key()
        params = dsa.DSAParameterNumbers(n["p"], n["q"], n["g"])
        return dsa.DSAPublicNumbers(n["y"], params).public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise HandleProtocolError(f"unusable {key.key_type}: {e}") from None
