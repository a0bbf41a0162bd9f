"""registry.provision: node and prefix admin identities over a real store."""

from __future__ import annotations

import stat

import pytest

from protocol.values import ADMIN_ONLY_PERMS, Perm
from protocol.valuetypes import ALL_ADMIN_PERMS, AdminRef
from registry import errors as reg
from registry import provision
from tests.conftest import store_of
from registry.secrets import verify_password
from resolver.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    return load_settings(env={}, overrides={"node.home": str(tmp_path / "a" / "home")})


@pytest.fixture
async def store(settings):
    store = store_of(settings)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def assert_admin(store, handle: str, scope: str | None, secret: str) -> None:
    admin = await store.get_admin(handle, 300)
    assert admin.scope == scope and verify_password(secret, admin.password_hash)
    assert await store.admin_secret(handle, 300) == secret.encode()
    values = {v.index: v for v in (await store.get_handle(handle)).values}
    assert AdminRef.decode(values[100].data) == AdminRef(handle, 300, ALL_ADMIN_PERMS)
    assert values[300].type == "HS_SECKEY" and values[300].permissions == ADMIN_ONLY_PERMS
    assert secret.encode() not in values[300].data          # sealed under the node key
    assert not values[300].permissions & Perm.PUBLIC_READ


def test_open_store_makes_a_private_home_and_refuses_a_missing_node(settings):
    with pytest.raises(reg.NotInitialised, match="run `idnode init`"):
        store_of(settings, create=False)
    assert not settings.home.exists()
    store_of(settings)
    assert stat.S_IMODE(settings.home.stat().st_mode) == 0o700
    assert (settings.home / "node.key").exists()


async def test_init_node_generates_a_secret_once(store):
    secret = await provision.init_node(store, "88.118", None)
    assert len(secret) >= 24
    assert await store.secondary_prefix() == "88.118"
    await assert_admin(store, "0.NA/88.118", None, secret)
    with pytest.raises(reg.HandleExists):
        await provision.init_node(store, "88.118", None)


async def test_init_node_with_a_given_password(store):
    assert await provision.init_node(store, "88.118", "node-admin-secret-1") is None
    await assert_admin(store, "0.NA/88.118", None, "node-admin-secret-1")


@pytest.mark.parametrize("password,needle", [
    ("short", "at least 12"),
    (" padded-password-1", "spaces"),
    ("control\x01password", "control"),
])
async def test_bad_passwords_are_refused(store, password, needle):
    with pytest.raises(reg.InvalidValue, match=needle):
        await provision.init_node(store, "88.118", password)
    with pytest.raises(reg.NotInitialised):
        await store.secondary_prefix()


async def test_init_node_refuses_a_bad_prefix(store):
    with pytest.raises(reg.InvalidHandleError):
        await provision.init_node(store, "88..118", None)


async def test_create_prefix_and_its_admin(store):
    await provision.init_node(store, "88.118", None)
    secret = await provision.create_prefix(store, " 88.118.8 ", " Acme ", credit_code="91440101ma59abcdef",
                                           contact="ops@acme.example", actor="test")
    info = await store.get_prefix("88.118.8")
    assert (info.prefix, info.owner, info.credit_code, info.contact, info.state) == (
        "88.118.8", "Acme", "91440101MA59ABCDEF", "ops@acme.example", "enabled")
    assert info.created > 0
    await assert_admin(store, "88.118.8/ADMIN", "88.118.8", secret)
    assert await provision.create_prefix(store, "88.118.8.1", "Sub", password="sub-prefix-secret", actor="t") is None
    await assert_admin(store, "88.118.8.1/ADMIN", "88.118.8.1", "sub-prefix-secret")
    with pytest.raises(reg.PrefixExists):
        await provision.create_prefix(store, "88.118.8", "Again", actor="test")


@pytest.mark.parametrize("prefix,exc,needle", [
    ("88.118", reg.InvalidHandleError, "not under"),
    ("88.1180", reg.InvalidHandleError, "not under"),
    ("99.1", reg.InvalidHandleError, "not under"),
    ("88.118.8/x", reg.InvalidHandleError, "invalid prefix"),
    ("", reg.InvalidHandleError, "invalid prefix"),
])
async def test_create_prefix_outside_the_node_is_refused(store, prefix, exc, needle):
    await provision.init_node(store, "88.118", None)
    with pytest.raises(exc, match=needle):
        await provision.create_prefix(store, prefix, "Acme", actor="test")
    assert await store.list_prefixes() == []


@pytest.mark.parametrize("owner,credit,needle", [
    ("", "", "owner is required"),
    ("  ", "", "owner is required"),
    ("Acme", "123", "credit code"),
    ("Acme", "91440101MA59ABCDEI", "credit code"),     # I is not in the alphabet
])
async def test_create_prefix_checks_owner_and_credit_code(store, owner, credit, needle):
    await provision.init_node(store, "88.118", None)
    with pytest.raises(reg.InvalidValue, match=needle):
        await provision.create_prefix(store, "88.118.8", owner, credit_code=credit, actor="test")


async def test_create_prefix_needs_a_node(store):
    with pytest.raises(reg.NotInitialised):
        await provision.create_prefix(store, "88.118.8", "Acme", actor="test")


async def test_rotate_prefix_secret(store):
    await provision.init_node(store, "88.118", None)
    old = await provision.create_prefix(store, "88.118.8", "Acme", actor="test")
    new = await provision.rotate_prefix_secret(store, "88.118.8", actor="test")
    assert new != old
    await assert_admin(store, "88.118.8/ADMIN", "88.118.8", new)
    assert not verify_password(old, (await store.get_admin("88.118.8/ADMIN", 300)).password_hash)
    assert await provision.rotate_prefix_secret(store, "88.118.8", "chosen-secret-0001", actor="t") is None
    await assert_admin(store, "88.118.8/ADMIN", "88.118.8", "chosen-secret-0001")
    with pytest.raises(reg.PrefixNotFound):
        await provision.rotate_prefix_secret(store, "88.118.9", actor="test")
    with pytest.raises(reg.InvalidValue):
        await provision.rotate_prefix_secret(store, "88.118.8", "short", actor="test")
