"""Secrets: slow password hashes for REST Basic checks and the node key.

Two different jobs, kept apart:

* an admin's password is checked against a salted scrypt hash
  (``scrypt$n$r$p$salt_b64$hash_b64``), so a stolen database does not give
  the passwords away;
* the recoverable copy of a secret (an HS_SECKEY value, needed for the
  Handle challenge-response) is sealed with AES-256-GCM under the node key,
  which lives outside the database in ``<home>/node.key``.

The node key is never printed, logged or put in a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import NodeKeyError

SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# Stored hashes come from our own database, but bound the work anyway.
_MAX_N, _MAX_R, _MAX_P = 2 ** 20, 32, 16
# Verified against when the identity is unknown, so that a wrong user name
# costs the same time as a wrong password. It matches no password that matters.
_DUMMY_HASH = ("scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA=="
               "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
TOKEN_VERSION = 1
_VERSION_BYTE = bytes([TOKEN_VERSION])


def _as_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        return secret.encode("utf-8", "surrogatepass")
    if isinstance(secret, (bytes, bytearray, memoryview)):
        return bytes(secret)
    raise TypeError("secret must be str or bytes")


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=128 * r * (n + p + 2) + 1024 * 1024)


def hash_password(secret: str | bytes) -> str:
    """A salted scrypt hash of ``secret`` (str is hashed as its UTF-8 bytes)."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(_as_bytes(secret), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        scheme, n_s, r_s, p_s, salt_s, hash_s = stored.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt = base64.b64decode(salt_s, validate=True)
        digest = base64.b64decode(hash_s, validate=True)
    except (ValueError, AttributeError, binascii.Error):
        return None
    if scheme != "scrypt" or not (1 < n <= _MAX_N and n & (n - 1) == 0):
        return None
    if not (0 < r <= _MAX_R and 0 < p <= _MAX_P and salt and 16 <= len(digest) <= 64):
        return None
    return n, r, p, salt, digest


def is_password_hash(stored: str) -> bool:
    """Whether ``stored`` is a hash this module can verify."""
    return isinstance(stored, str) and _parse_hash(stored) is not None


def verify_password(secret: str | bytes, stored: str | None) -> bool:
    """Check ``secret`` against a stored hash in constant time.

    ``stored=None`` (unknown identity) or a malformed hash still costs one
    scrypt run and returns False, so timing does not tell which it was.
    """
    parsed = _parse_hash(stored) if isinstance(stored, str) else None
    known = parsed is not None
    n, r, p, salt, expected = parsed if known else _parse_hash(_DUMMY_HASH)  # type: ignore[misc]
    try:
        data = _as_bytes(secret)
    except TypeError:
        data, known = b"", False
    actual = _scrypt(data, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected) and known


def generate_secret() -> str:
    """A random URL-safe secret of 192 bits (32 characters)."""
    return secrets.token_urlsafe(24)


class NodeKey:
    """The node's 32-byte AES-256-GCM key; seals secrets kept in the store.

    Tokens are ``version(1) || nonce(12) || ciphertext || tag(16)``; the
    version byte is authenticated with the caller's ``aad``, which binds a
    token to the place it belongs (handle key and index), so a token copied
    to another value does not open.
    """

    __slots__ = ("_aead", "_fingerprint")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise NodeKeyError(f"the node key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(bytes(key))
        self._fingerprint = hashlib.sha256(b"idnode node key\0" + bytes(key)).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"NodeKey(fingerprint={self._fingerprint})"

    @property
    def fingerprint(self) -> str:
        """A short, non-secret name for the key (to tell two keys apart in logs)."""
        return self._fingerprint

    # -- construction ---------------------------------------------------------
    @classmethod
    def generate(cls) -> "NodeKey":
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def from_base64(cls, text: str | bytes) -> "NodeKey":
        """A key supplied by the caller (e.g. from a secret manager), base64."""
        try:
            raw = base64.b64decode(text.strip() if isinstance(text, (str, bytes)) else text,
                                   validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise NodeKeyError("the node key is not valid base64") from None
        return cls(raw)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NodeKey":
        """Read a key file: base64 text (as written here) or 32 raw bytes."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise NodeKeyError(f"node key file {os.fspath(path)} does not exist") from None
        except OSError as exc:
            raise NodeKeyError(f"cannot read node key file {os.fspath(path)}: {exc.strerror}") from None
        if len(data) == KEY_BYTES:
            return cls(data)
        try:
            return cls.from_base64(data)
        except NodeKeyError:
            raise NodeKeyError(f"node key file {os.fspath(path)} is malformed") from None

    @classmethod
    def load_or_create(cls, home: str | os.PathLike) -> "NodeKey":
        """The key in ``<home>/node.key``, created (mode 0600) on first use.

        The new file appears atomically (written aside, then hard-linked into
        place), so two processes starting together end up with the same key.
        """
        home = Path(home)
        path = home / "node.key"
        if path.exists():
            return cls.load(path)
        key = os.urandom(KEY_BYTES)
        try:
            written = write_key_file(home, "node.key", base64.b64encode(key) + b"\n")
        except OSError as exc:
            raise NodeKeyError(f"cannot create node key {path}: {exc.strerror}") from None
        return cls(key) if written else cls.load(path)

    # -- sealing ------------------------------------------------------------
    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return _VERSION_BYTE + nonce + self._aead.encrypt(nonce, bytes(plaintext), _VERSION_BYTE + aad)

    def decrypt(self, token: bytes, aad: bytes) -> bytes:
        """Open a token; NodeKeyError if it is not ours, moved, or damaged."""
        token = bytes(token)
        if len(token) < 1 + NONCE_BYTES + TAG_BYTES or token[0] != TOKEN_VERSION:
            raise NodeKeyError("cannot decrypt secret: not a sealed value of a known version")
        try:
            return self._aead.decrypt(token[1:1 + NONCE_BYTES], token[1 + NONCE_BYTES:],
                                      _VERSION_BYTE + aad)
        except InvalidTag:
            raise NodeKeyError("cannot decrypt secret: wrong node key or damaged data") from None

    def opens(self, token: bytes, aad: bytes) -> bool:
        """Whether ``token`` is a sealed value of this key for ``aad``."""
        try:
            self.decrypt(token, aad)
        except NodeKeyError:
            return False
        return True


def write_key_file(home: Path, name: str, data: bytes, *, replace: bool = False) -> bool:
    """Put ``data`` in ``home/name`` atomically, mode 0600: written aside and
    synced, then hard-linked into place (or, with ``replace``, renamed over
    the old file), and the directory synced. False when the file was already
    there and ``replace`` is off, so two processes starting together keep
    one key. OSError as it comes. The node key and the server key are both
    written here."""
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=home)     # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, home / name)
        else:
            try:
                os.link(tmp, home / name)
            except FileExistsError:
                return False
        _fsync_dir(home)
        return True
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
