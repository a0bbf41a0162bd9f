"""registry.keys: PEM public keys in, HS_PUBKEY values in the Handle.Net encoding out;
the store and provisioning with admin identities proven by such keys alone."""

from __future__ import annotations

import pytest

from protocol.values import DEFAULT_PERMS, HandleValue, Perm
from protocol.valuetypes import AdminRef, PublicKey
from registry import provision
from registry.errors import InvalidHandleError, InvalidValue, PrefixDisabled, ValueExists
from registry.keys import MAX_PEM_BYTES, load_public_key, public_key_value
from registry.model import AdminIdentity, PrefixInfo
from tests.keys import dsa_key, ec_public_pem, private_pem, public_pem, rsa_key

from .conftest import ENT_SECRET, seckey


@pytest.mark.parametrize("fmt", ["spki", "pkcs1"])
def test_rsa_public_key_in_either_pem_form(fmt):
    key = rsa_key()
    pem = public_pem(key, fmt)
    value = public_key_value(pem, 300)
    assert (value.index, value.type) == (300, "HS_PUBKEY")
    assert value.permissions == int(DEFAULT_PERMS) and value.permissions & Perm.PUBLIC_READ
    decoded = PublicKey.decode(value.data)
    numbers = key.public_key().public_numbers()
    assert decoded.key_type == "RSA_PUB_KEY" and decoded.numbers() == {"e": numbers.e, "n": numbers.n}
    assert decoded == PublicKey.from_numbers("RSA_PUB_KEY", {"e": numbers.e, "n": numbers.n})
    assert load_public_key(pem.decode()) == decoded                 # text or bytes alike


def test_dsa_public_key_parts_in_handle_order():
    key = dsa_key()
    decoded = PublicKey.decode(public_key_value(public_pem(key), 301).data)
    n = key.public_key().public_numbers()
    p = n.parameter_numbers
    assert decoded.key_type == "DSA_PUB_KEY"
    assert decoded.parts == PublicKey.from_numbers("DSA_PUB_KEY", {"q": p.q, "p": p.p, "g": p.g, "y": n.y}).parts
    assert decoded.numbers() == {"q": p.q, "p": p.p, "g": p.g, "y": n.y}


@pytest.mark.parametrize("pem,needle", [
    (lambda: private_pem(rsa_key()), "private key: pass the public key"),
    (lambda: private_pem(rsa_key(), "traditional"), "private key: pass the public key"),
    (lambda: private_pem(rsa_key(), password=b"pass phrase"), "private key: pass the public key"),
    (lambda: private_pem(dsa_key()), "private key: pass the public key"),
    (lambda: public_pem(rsa_key(1024)), "1024 bits; at least 2048"),
    (lambda: public_pem(dsa_key(1024)), "1024 bits; at least 2048"),
    (lambda: ec_public_pem(), "EC keys are not supported"),
    (lambda: b"", "not a PEM public key"),
    (lambda: "hello, key", "not a PEM public key"),
    (lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a readable PEM public key"),
    (lambda: public_pem(rsa_key())[:200], "not a readable PEM public key"),
    (lambda: b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "certificate"),
    (lambda: b"\x30\x82\x01\x22\xff\xfe", "not binary data"),
    (lambda: "-----BEGIN PUBLIC KEY-----\n\u00e9\n", "PEM text"),
    (lambda: b"-" * (MAX_PEM_BYTES + 1), f"over {MAX_PEM_BYTES} bytes"),
    (lambda: None, "PEM text"),
    (lambda: 12, "PEM text"),
])
def test_what_is_not_an_acceptable_public_key_is_refused_clearly(pem, needle):
    with pytest.raises(InvalidValue, match=needle):
        public_key_value(pem(), 300)


# -- the store: an admin identity proven by its keys alone ------------------------------------

def _key_admin_values(handle: str, pem: bytes) -> list:
    return [HandleValue(100, "HS_ADMIN", AdminRef(handle, 300).encode()), public_key_value(pem, 300)]


async def test_store_creates_a_prefix_whose_admin_has_no_secret(store, hashes):
    seq = await store.last_seq()
    await store.create_prefix(PrefixInfo("88.118.7", "Keyed Co"), "88.118.7/ADMIN",
                              _key_admin_values("88.118.7/ADMIN", public_pem(rsa_key())), actor="t")
    assert await store.get_admin("88.118.7/ADMIN", 300) is None
    assert await store.admin_secret("88.118.7/ADMIN", 300) is None
    assert [v.type for v in (await store.get_handle("88.118.7/ADMIN")).values] == ["HS_ADMIN", "HS_PUBKEY"]
    assert [(e.operation, e.handle) for e in await store.audit(since_seq=seq)] == [
        ("prefix.create", "88.118.7"), ("handle.create", "88.118.7/ADMIN")]
    # A secret is never set over the key: the identity stays a key identity.
    with pytest.raises(ValueExists, match="not a secret"):
        await store.set_admin_password(AdminIdentity("88.118.7/ADMIN", 300, "88.118.7", hashes[ENT_SECRET]),
                                       seckey(ENT_SECRET), actor="t")
    assert (await store.get_handle("88.118.7/ADMIN")).values[1].type == "HS_PUBKEY"
    assert await store.get_admin("88.118.7/ADMIN", 300) is None


async def test_store_refuses_a_key_admin_outside_its_prefix(store):
    seq = await store.last_seq()
    with pytest.raises(InvalidHandleError, match="not under prefix"):
        await store.create_prefix(PrefixInfo("88.118.7", "Keyed Co"), "88.118.8/KEYS",
                                  _key_admin_values("88.118.8/KEYS", public_pem(rsa_key())), actor="t")
    with pytest.raises(InvalidHandleError):
        await store.create_prefix(PrefixInfo("88.118.7", "Keyed Co"), "no slash",
                                  _key_admin_values("88.118.7/ADMIN", public_pem(rsa_key())), actor="t")
    assert await store.last_seq() == seq and await store.get_prefix("88.118.7") is None


async def test_add_public_key_is_refused_while_the_prefix_is_disabled(store):
    await store.set_prefix_state("88.118.8", "disabled", actor="t")
    with pytest.raises(PrefixDisabled):
        await provision.add_public_key(store, "88.118.8", public_pem(rsa_key()), actor="t")
    await store.set_prefix_state("88.118.8", "enabled", actor="t")
    assert await provision.add_public_key(store, "88.118.8", public_pem(rsa_key()), actor="t") == (301, 101)
    with pytest.raises(InvalidValue, match="key index"):
        await provision.add_public_key(store, "88.118.8", public_pem(rsa_key()), 0, actor="t")
