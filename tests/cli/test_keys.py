"""Key identities from the CLI: ``prefix create --public-key``, ``prefix
add-key``, proving them with signed challenge answers; and ``admin passwd``."""

from __future__ import annotations

import itertools
import re

import pytest

from protocol.codes import RC
from protocol.identifier import parse_handle
from protocol.values import Perm
from protocol.valuetypes import ALL_ADMIN_PERMS, AdminPerm, AdminRef, PublicKey
from registry.keys import load_public_key
from registry.secrets import verify_password
from resolver.core.auth import Authenticator
from resolver.core.errors import Refused
from resolver.core.lockout import Lockout
from resolver.core.permissions import Permissions
from resolver.shared import SharedState
from tests.conftest import basic
from tests.keys import dsa_key, ec_public_pem, key_answer, private_pem, public_pem, rsa_key

from .conftest import ENT_PASSWORD, Idnode, assert_error

SECRET_LINE = re.compile(r"^secret: (\S+)$", re.M)
_SOURCES = (f"10.0.{i // 250}.{i % 250 + 1}" for i in itertools.count())     # one per check: no lock-out


def key_file(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def values_of(idnode: Idnode, handle: str) -> dict:
    record = idnode.with_store(lambda store: store.get_handle(handle))
    return {v.index: v for v in record.values}


def audit_since(idnode: Idnode, seq: int) -> list[tuple[str, str, str]]:
    entries = idnode.with_store(lambda store: store.audit(since_seq=seq))
    return [(e.actor, e.operation, e.handle) for e in entries]


def last_seq(idnode: Idnode) -> int:
    return idnode.with_store(lambda store: store.last_seq())


def authenticate(idnode: Idnode, check):
    """``await check(auth)`` with the node's Authenticator over its store: the
    caller it proves, or the Refused it raises."""
    settings = idnode.settings()

    async def work(store):
        shared = SharedState.private()

        async def no_delay(_seconds: float) -> None:
            return None

        try:
            auth = Authenticator(store, Lockout(shared, settings.auth), sleep=no_delay)
            try:
                return await check(auth)
            except Refused as exc:
                return exc
        finally:
            shared.close()
    return idnode.with_store(work)


def answer_as(idnode: Idnode, key, handle: str, index: int):
    return authenticate(idnode, lambda auth: auth.answer(
        b"n" * 16, b"d" * 32, key_answer(key, handle, index, b"n" * 16, b"d" * 32), next(_SOURCES), "hs-tcp"))


def basic_as(idnode: Idnode, user: str, password: str):
    return authenticate(idnode, lambda auth: auth.basic(basic(user, password)["Authorization"], next(_SOURCES)))


def may_create_under(idnode: Idnode, identity, prefix: str) -> bool:
    return idnode.with_store(lambda store: Permissions(store).allowed(
        identity, parse_handle(f"{prefix}/new"), None, int(AdminPerm.ADD_HANDLE)))


@pytest.fixture
def keyed(node, tmp_path) -> Idnode:
    """The node, plus 88.118.7 whose admin is the key identity of ``rsa_key()``."""
    node.ok("prefix", "create", "88.118.7", "--owner", "Keyed Co", "--public-key",
            key_file(tmp_path, "admin.pem", public_pem(rsa_key())))
    return node


# ---------------------------------------------------------------- prefix create --public-key

def test_create_prefix_with_a_public_key_makes_a_key_identity(node, tmp_path):
    seq = last_seq(node)
    result = node.ok("prefix", "create", "88.118.7", "--owner", "Keyed Co",
                     "--public-key", key_file(tmp_path, "admin.pem", public_pem(rsa_key())))
    assert "300:88.118.7/ADMIN" in result.stdout and "key identity" in result.stdout
    assert "secret" not in result.stdout.lower()
    values = values_of(node, "88.118.7/ADMIN")
    assert sorted(values) == [100, 300]
    assert AdminRef.decode(values[100].data) == AdminRef("88.118.7/ADMIN", 300, ALL_ADMIN_PERMS)
    assert values[300].type == "HS_PUBKEY" and values[300].permissions & Perm.PUBLIC_READ
    assert PublicKey.decode(values[300].data) == load_public_key(public_pem(rsa_key()))
    assert node.with_store(lambda store: store.get_admin("88.118.7/ADMIN", 300)) is None     # no secret, no hash
    assert audit_since(node, seq) == [("cli", "prefix.create", "88.118.7"),
                                      ("cli", "handle.create", "88.118.7/ADMIN")]
    # The key is public, as Handle.Net admin keys are.
    assert re.search(r"^300 HS_PUBKEY ", node.ok("resolve", "88.118.7/ADMIN").stdout, re.M)


@pytest.mark.parametrize("name,pem,key_type", [
    ("pkcs1.pem", lambda: public_pem(rsa_key(), "pkcs1"), "RSA_PUB_KEY"),
    ("dsa.pem", lambda: public_pem(dsa_key()), "DSA_PUB_KEY"),
])
def test_create_prefix_takes_pkcs1_rsa_and_dsa_keys(node, tmp_path, name, pem, key_type):
    node.ok("prefix", "create", "88.118.7", "--owner", "Keyed Co", "--public-key", key_file(tmp_path, name, pem()))
    assert PublicKey.decode(values_of(node, "88.118.7/ADMIN")[300].data).key_type == key_type


def test_create_prefix_reads_the_key_from_stdin(node):
    node.ok("prefix", "create", "88.118.7", "--owner", "Keyed Co", "--public-key", "-",
            input=public_pem(rsa_key()).decode())
    assert values_of(node, "88.118.7/ADMIN")[300].type == "HS_PUBKEY"


@pytest.mark.parametrize("pem,needle", [
    (lambda: private_pem(rsa_key()), "private key: pass the public key"),
    (lambda: private_pem(rsa_key(), "traditional"), "private key: pass the public key"),
    (lambda: b"this is not a key\n", "not a PEM public key"),
    (lambda: public_pem(rsa_key(1024)), "1024 bits; at least 2048"),
    (lambda: ec_public_pem(), "EC keys are not supported"),
])
def test_create_prefix_with_a_bad_key_writes_nothing(node, tmp_path, pem, needle):
    seq = last_seq(node)
    assert_error(node("prefix", "create", "88.118.7", "--owner", "X", "--public-key",
                      key_file(tmp_path, "k.pem", pem())), needle)
    assert last_seq(node) == seq
    assert_error(node("prefix", "show", "88.118.7"), "not allocated")


def test_create_prefix_key_file_problems_are_one_line(node, tmp_path):
    assert_error(node("prefix", "create", "88.118.7", "--owner", "X", "--public-key", tmp_path / "missing.pem"),
                 "No such file or directory")
    assert_error(node("prefix", "create", "88.118.7", "--owner", "X", "--public-key", tmp_path), "directory")
    assert_error(node("prefix", "create", "88.118.7", "--owner", "X", "--public-key", "k.pem", "--password-stdin"),
                 "exclude each other", status=2)


def test_prefix_passwd_refuses_a_key_identity(keyed):
    assert_error(keyed("prefix", "passwd", "88.118.7"), "not a secret")
    assert values_of(keyed, "88.118.7/ADMIN")[300].type == "HS_PUBKEY"


# ---------------------------------------------------------------- prefix add-key

def test_add_key_at_the_next_free_index_with_an_admin_value_naming_it(keyed, tmp_path):
    seq = last_seq(keyed)
    result = keyed.ok("prefix", "add-key", "88.118.7", key_file(tmp_path, "second.pem", public_pem(rsa_key(2048, 1))))
    assert "added key 301:88.118.7/ADMIN" in result.stdout and "HS_ADMIN at 101" in result.stdout
    values = values_of(keyed, "88.118.7/ADMIN")
    assert sorted(values) == [100, 101, 300, 301]
    assert values[301].type == "HS_PUBKEY" and values[301].permissions & Perm.PUBLIC_READ
    assert PublicKey.decode(values[301].data) == load_public_key(public_pem(rsa_key(2048, 1)))
    assert AdminRef.decode(values[101].data) == AdminRef("88.118.7/ADMIN", 301, ALL_ADMIN_PERMS)
    assert audit_since(keyed, seq) == [("cli", "handle.add", "88.118.7/ADMIN")]

    keyed.ok("prefix", "add-key", "88.118.7", "-", input=public_pem(dsa_key()).decode())
    keyed.ok("prefix", "add-key", "88.118.7", key_file(tmp_path, "third.pem", public_pem(rsa_key(2048, 2))),
             "--index", "400")
    values = values_of(keyed, "88.118.7/ADMIN")
    assert sorted(values) == [100, 101, 102, 103, 300, 301, 302, 400]
    assert AdminRef.decode(values[102].data).index == 302 and AdminRef.decode(values[103].data).index == 400


def test_add_key_to_a_prefix_with_a_secret_keeps_the_secret(node, tmp_path):
    node.ok("prefix", "add-key", "88.118.8", key_file(tmp_path, "k.pem", public_pem(rsa_key())))
    values = values_of(node, "88.118.8/ADMIN")
    assert values[300].type == "HS_SECKEY" and values[301].type == "HS_PUBKEY"
    assert basic_as(node, "300:88.118.8/ADMIN", ENT_PASSWORD).identity.handle == "88.118.8/ADMIN"
    assert answer_as(node, rsa_key(), "88.118.8/ADMIN", 301).identity.index == 301


@pytest.mark.parametrize("args,pem,needle,status", [
    (["--index", "300"], lambda: public_pem(rsa_key(2048, 1)), "index 300 of 88.118.7/ADMIN is already in use", 1),
    (["--index", "100"], lambda: public_pem(rsa_key(2048, 1)), "already in use (a HS_ADMIN value)", 1),
    (["--index", "0"], lambda: public_pem(rsa_key(2048, 1)), "--index", 2),
    (["--index", "x"], lambda: public_pem(rsa_key(2048, 1)), "--index", 2),
    ([], lambda: private_pem(rsa_key(2048, 1)), "private key: pass the public key", 1),
    ([], lambda: b"garbage", "not a PEM public key", 1),
    ([], lambda: b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n", "not a readable PEM", 1),
    ([], lambda: public_pem(rsa_key(1024)), "1024 bits; at least 2048", 1),
])
def test_add_key_refusals_write_nothing(keyed, tmp_path, args, pem, needle, status):
    before, seq = values_of(keyed, "88.118.7/ADMIN"), last_seq(keyed)
    assert_error(keyed("prefix", "add-key", "88.118.7", key_file(tmp_path, "k.pem", pem()), *args), needle, status)
    assert values_of(keyed, "88.118.7/ADMIN") == before and last_seq(keyed) == seq


def test_add_key_needs_an_allocated_prefix(keyed, tmp_path):
    pem = key_file(tmp_path, "k.pem", public_pem(rsa_key(2048, 1)))
    assert_error(keyed("prefix", "add-key", "88.118.77", pem), "prefix 88.118.77 is not allocated on this node")
    assert_error(keyed("prefix", "add-key", "88..1", pem), "invalid prefix")
    assert_error(keyed("prefix", "add-key", "88.118.7", tmp_path / "missing.pem"), "No such file or directory")


# ---------------------------------------------------------------- proving a key identity

def test_a_challenge_answer_signed_with_the_key_proves_the_identity(keyed, tmp_path):
    caller = answer_as(keyed, rsa_key(), "88.118.7/ADMIN", 300)
    assert (caller.identity.handle, caller.identity.index, caller.identity.scope) == ("88.118.7/ADMIN", 300,
                                                                                      "88.118.7")
    assert answer_as(keyed, rsa_key(), "88.118.7/ADMIN", 0).identity.index == 300     # index 0: any key
    assert may_create_under(keyed, caller.identity, "88.118.7")
    assert not may_create_under(keyed, caller.identity, "88.118.8")

    for key, index in ((rsa_key(2048, 1), 300), (rsa_key(2048, 1), 0), (rsa_key(), 301), (rsa_key(), 100)):
        refused = answer_as(keyed, key, "88.118.7/ADMIN", index)
        assert isinstance(refused, Refused) and refused.code == RC.AUTHENTICATION_FAILED, (key, index)

    # A second key, added: its own identity, an admin of the prefix too; the first still works.
    keyed.ok("prefix", "add-key", "88.118.7", key_file(tmp_path, "second.pem", public_pem(rsa_key(2048, 1))))
    second = answer_as(keyed, rsa_key(2048, 1), "88.118.7/ADMIN", 301)
    assert (second.identity.handle, second.identity.index) == ("88.118.7/ADMIN", 301)
    assert may_create_under(keyed, second.identity, "88.118.7")
    assert answer_as(keyed, rsa_key(), "88.118.7/ADMIN", 300).identity.index == 300

    keyed.ok("prefix", "disable", "88.118.7")
    refused = answer_as(keyed, rsa_key(), "88.118.7/ADMIN", 300)
    assert isinstance(refused, Refused) and "disabled" in refused.message


def test_a_dsa_key_identity_proves_itself_too(node, tmp_path):
    node.ok("prefix", "create", "88.118.7", "--owner", "Keyed Co", "--public-key",
            key_file(tmp_path, "dsa.pem", public_pem(dsa_key())))
    assert answer_as(node, dsa_key(), "88.118.7/ADMIN", 300).identity.index == 300
    assert isinstance(answer_as(node, dsa_key(1024), "88.118.7/ADMIN", 300), Refused)


def test_basic_refuses_a_key_identity_clearly(keyed):
    refused = basic_as(keyed, "300:88.118.7/ADMIN", "any-password-at-all")
    assert isinstance(refused, Refused) and refused.code == RC.AUTHENTICATION_FAILED
    assert "key identity" in refused.message and "private key" in refused.message
    refused = basic_as(keyed, "300:88.118.8/ADMIN", "a-wrong-password")
    assert isinstance(refused, Refused) and refused.message == "authentication failed"


# ---------------------------------------------------------------- admin passwd

def test_admin_passwd_recovers_a_lost_node_admin_secret(idnode):
    lost = SECRET_LINE.search(idnode.ok("init").stdout).group(1)
    result = idnode.ok("admin", "passwd")
    new = SECRET_LINE.search(result.stdout).group(1)
    assert new != lost and "300:0.NA/88.118" in result.stdout and "will not be shown again" in result.stdout
    stored = idnode.with_store(lambda store: store.get_admin("0.NA/88.118", 300)).password_hash
    assert verify_password(new, stored) and not verify_password(lost, stored)
    assert idnode.with_store(lambda store: store.admin_secret("0.NA/88.118", 300)) == new.encode()
    assert isinstance(basic_as(idnode, "300:0.NA/88.118", lost), Refused)
    assert basic_as(idnode, "300:0.NA/88.118", new).identity.node_wide

    chosen = idnode.ok("admin", "passwd", "--password-stdin", input="chosen-node-secret-01\n")
    assert "secret as given" in chosen.stdout and "chosen-node-secret-01" not in chosen.stdout
    assert basic_as(idnode, "300:0.NA/88.118", "chosen-node-secret-01").identity.node_wide
    assert isinstance(basic_as(idnode, "300:0.NA/88.118", new), Refused)


@pytest.mark.parametrize("args,stdin,needle", [
    (["--password-stdin"], "", "no password on standard input"),
    (["--password-stdin"], "short\n", "at least 12 characters"),
    (["--password-stdin"], " padded-secret-0001\n", "spaces"),
])
def test_admin_passwd_bad_input_changes_nothing(node, args, stdin, needle):
    before = node.with_store(lambda store: store.get_admin("0.NA/88.118", 300))
    assert_error(node("admin", "passwd", *args, input=stdin), needle)
    assert node.with_store(lambda store: store.get_admin("0.NA/88.118", 300)) == before


def test_admin_passwd_needs_a_node(idnode):
    assert_error(idnode("admin", "passwd"), "run `idnode init` first")
    assert not idnode.home.exists()
