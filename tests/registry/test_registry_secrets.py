"""registry.secrets: scrypt password hashes, the node key and sealed secrets."""

from __future__ import annotations

import base64
import os
import stat
import string
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import NodeKeyError
from registry.secrets import (KEY_BYTES, NodeKey, _DUMMY_HASH, generate_secret, hash_password,
                              is_password_hash, verify_password)

# One hash for the whole module: scrypt is slow on purpose.
SECRET = "correct horse battery staple"
STORED = hash_password(SECRET)


def test_hash_format_and_parameters():
    scheme, n, r, p, salt, digest = STORED.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert SECRET not in STORED


def test_same_secret_hashes_differently():
    assert hash_password(SECRET) != STORED          # a fresh random salt each time


def test_verify_right_and_wrong():
    assert verify_password(SECRET, STORED)
    assert verify_password(SECRET.encode(), STORED)  # str is hashed as its UTF-8 bytes
    assert not verify_password(SECRET + "x", STORED)
    assert not verify_password("", STORED)


def test_unknown_user_runs_the_dummy_and_fails():
    assert is_password_hash(_DUMMY_HASH)
    assert not verify_password(SECRET, None)
    assert not verify_password("", None)


@pytest.mark.parametrize("stored", [
    "", "scrypt", "plain$text", "md5$1$2$3$AAAA$AAAA",
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==",                       # missing hash
    "scrypt$16384$8$1$!!notbase64!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",   # n not 2^k
    "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # n huge
    "scrypt$16384$999$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "scrypt$x$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
])
def test_malformed_hash_is_false_not_an_exception(stored):
    assert not is_password_hash(stored)
    assert verify_password(SECRET, stored) is False


def test_verify_rejects_non_text_secret():
    assert verify_password(12345, STORED) is False      # type: ignore[arg-type]


def test_generate_secret():
    alphabet = set(string.ascii_letters + string.digits + "-_")
    secrets = {generate_secret() for _ in range(50)}
    assert len(secrets) == 50
    for s in secrets:
        assert set(s) <= alphabet
        assert len(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) * 8 >= 128


# -- the node key ---------------------------------------------------------------------
def test_load_or_create_writes_0600_and_reloads_the_same_key(tmp_path):
    home = tmp_path / "home"
    key = NodeKey.load_or_create(home)
    path = home / "node.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_bytes())) == KEY_BYTES
    assert os.listdir(home) == ["node.key"]             # no temporary file left behind
    again = NodeKey.load_or_create(home)
    assert again.fingerprint == key.fingerprint
    assert again.decrypt(key.encrypt(b"data", b"aad"), b"aad") == b"data"


def test_racing_creators_agree_on_one_key(tmp_path):
    home = tmp_path / "home"
    keys: list[NodeKey] = []
    threads = [threading.Thread(target=lambda: keys.append(NodeKey.load_or_create(home))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({k.fingerprint for k in keys}) == 1
    assert os.listdir(home) == ["node.key"]


def test_key_never_in_repr(tmp_path):
    key = NodeKey.load_or_create(tmp_path)
    text = (tmp_path / "node.key").read_text().strip()
    raw = base64.b64decode(text)
    for shown in (repr(key), str(key), key.fingerprint):
        assert text not in shown and raw.hex() not in shown
    assert not hasattr(key, "__dict__")


def test_from_base64_and_raw_file(tmp_path):
    raw = os.urandom(KEY_BYTES)
    a = NodeKey.from_base64(base64.b64encode(raw).decode())
    (tmp_path / "raw.key").write_bytes(raw)
    b = NodeKey.load(tmp_path / "raw.key")
    assert a.fingerprint == b.fingerprint == NodeKey(raw).fingerprint


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"short").decode(), "", "   "])
def test_bad_supplied_key(text):
    with pytest.raises(NodeKeyError):
        NodeKey.from_base64(text)


def test_bad_key_file(tmp_path):
    (tmp_path / "node.key").write_text("garbage\n")
    with pytest.raises(NodeKeyError, match="malformed"):
        NodeKey.load_or_create(tmp_path)
    with pytest.raises(NodeKeyError, match="does not exist"):
        NodeKey.load(tmp_path / "missing.key")


# -- sealing --------------------------------------------------------------------------
def test_encrypt_round_trip_with_fresh_nonces():
    key = NodeKey.generate()
    a, b = key.encrypt(b"secret", b"88.118.8/x\0300"), key.encrypt(b"secret", b"88.118.8/x\0300")
    assert a != b and a[0] == 1 and b"secret" not in a
    assert len(a) == 1 + 12 + len(b"secret") + 16
    assert key.decrypt(a, b"88.118.8/x\0300") == key.decrypt(b, b"88.118.8/x\0300") == b"secret"


def test_decrypt_failures_are_one_clear_error():
    key = NodeKey.generate()
    token = key.encrypt(b"secret", b"place")
    tampered = bytearray(token)
    tampered[-1] ^= 1
    cases = [
        (key, token, b"other place"),                   # moved to another value
        (NodeKey.generate(), token, b"place"),          # wrong key
        (key, bytes(tampered), b"place"),               # damaged
        (key, token[:20], b"place"),                    # truncated
        (key, b"\x02" + token[1:], b"place"),           # unknown version
        (key, b"", b"place"),
    ]
    for k, t, aad in cases:
        with pytest.raises(NodeKeyError):
            k.decrypt(t, aad)
        assert not k.opens(t, aad)
    assert key.opens(token, b"place")


@given(st.binary(max_size=200), st.binary(max_size=40))
def test_decrypt_arbitrary_bytes_raises_only_node_key_error(data, aad):
    key = NodeKey(b"k" * KEY_BYTES)
    with pytest.raises(NodeKeyError):
        key.decrypt(data, aad)


def test_wrong_key_length():
    with pytest.raises(NodeKeyError):
        NodeKey(b"x" * 31)
