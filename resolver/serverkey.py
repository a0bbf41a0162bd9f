"""The node's server key: the RSA key pair that signs certified Handle replies.

Its public half goes into the HS_SITE that get site info answers (encoded as
Handle.Net encodes server keys), where Handle.Net clients find it to verify
a session setup or any reply to a request that set CT. It lives in
``<home>/server.key``: PKCS#8 PEM, mode 0600, beside ``node.key``. The two
are never the same key: ``node.key`` seals stored secrets and never leaves
the home; the server key's public half is published to the world.

* ``idnode init`` creates it; a home made before it existed gets one the
  first time the node serves.
* ``idnode key rotate`` replaces it (atomically: written aside, renamed into
  place). A running node keeps the key it started with; restart it, and
  clients fetch the new HS_SITE (its serial is ``handle.site_serial``: raise
  it so that clients holding the old site notice).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from registry.secrets import write_key_file

SERVER_KEY_FILE = "server.key"
KEY_BITS = 2048


class ServerKeyError(Exception):
    """The server key file is missing, unreadable or not an RSA private key."""


def server_key_path(home: str | os.PathLike) -> Path:
    return Path(home) / SERVER_KEY_FILE


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(home: Path, key: rsa.RSAPrivateKey, *, replace: bool) -> bool:
    """Put ``key`` in place atomically; False if one was there and ``replace`` is off."""
    try:
        return write_key_file(home, SERVER_KEY_FILE, _pem(key), replace=replace)
    except OSError as exc:
        raise ServerKeyError(f"cannot write the server key {home / SERVER_KEY_FILE}: {exc.strerror}") from None


def load(home: str | os.PathLike) -> rsa.RSAPrivateKey:
    path = server_key_path(home)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ServerKeyError(f"server key file {path} does not exist (idnode init creates it)") from None
    except OSError as exc:
        raise ServerKeyError(f"cannot read server key file {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ServerKeyError(f"server key file {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ServerKeyError(f"server key file {path} does not hold an RSA key")
    return key


def load_or_create(home: str | os.PathLike) -> rsa.RSAPrivateKey:
    """The server key of ``home``, created on first use."""
    home = Path(home)
    if not server_key_path(home).exists():
        _write(home, rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS), replace=False)
    return load(home)


def rotate(home: str | os.PathLike) -> rsa.RSAPrivateKey:
    """Replace the server key of ``home`` with a new one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    _write(Path(home), key, replace=True)
    return key
