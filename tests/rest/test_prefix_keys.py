"""Key identities over REST: a prefix whose admin is a public key, keys added
to a prefix's admin handle, and what such an identity can (and cannot) prove;
``idnode admin passwd`` against a running node."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from protocol.codes import RC
from protocol.values import HandleValue
from protocol.valuetypes import PublicKey
from registry.keys import load_public_key
from resolver.cli import cli
from resolver.core.errors import Refused
from resolver.hs.client import HandleClient, PublicKeyAuth
from tests.conftest import NODE_PASSWORD, basic
from tests.keys import dsa_key, key_answer, private_pem, public_pem, rsa_key

KEY_PEM = public_pem(rsa_key()).decode()


async def create(live, prefix: str, body: dict, headers=None):
    r = await live.session.put(f"{live.url}/api/prefixes/{prefix}", json=body,
                               headers=live.node_admin if headers is None else headers)
    return r.status, await r.json()


async def add_key(live, prefix: str, body, headers=None):
    r = await live.session.post(f"{live.url}/api/prefixes/{prefix}/keys", json=body,
                                headers=live.node_admin if headers is None else headers)
    return r.status, await r.json()


async def admin_values(live, prefix: str) -> dict[int, dict]:
    r = await live.session.get(f"{live.url}/api/handles/{prefix}/ADMIN")
    assert r.status == 200
    return {v["index"]: v for v in (await r.json())["values"]}


async def test_node_admin_creates_a_prefix_whose_admin_is_a_key(live):
    status, created = await create(live, "88.118.20", {"owner": "Keyed Co", "publicKey": KEY_PEM})
    assert status == 201 and created["admin"] == "300:88.118.20/ADMIN" and "secret" not in created
    values = await admin_values(live, "88.118.20")                   # anonymous: the key is public
    assert sorted(values) == [100, 300] and values[300]["type"] == "HS_PUBKEY"
    stored = (await live.store.get_handle("88.118.20/ADMIN")).values
    assert PublicKey.decode(next(v for v in stored if v.index == 300).data) == load_public_key(KEY_PEM)
    assert await live.store.get_admin("88.118.20/ADMIN", 300) is None

    # HTTP Basic cannot prove a key identity: refused, saying why.
    r = await live.session.put(f"{live.url}/api/handles/88.118.20/x", headers=basic("300:88.118.20/ADMIN", "x" * 20),
                               json={"values": [{"index": 1, "type": "URL", "data": "https://keyed.example/"}]})
    body = await r.json()
    assert r.status == 401 and body["responseCode"] == RC.AUTHENTICATION_FAILED and "key identity" in body["message"]

    # A challenge answer signed with the private key proves it (and with another key does not).
    auth = live.running.node.core.auth
    caller = await auth.answer(b"n" * 16, b"d" * 32,
                               key_answer(rsa_key(), "88.118.20/ADMIN", 300, b"n" * 16, b"d" * 32),
                               "10.1.0.1", "hs-tcp")
    assert (caller.identity.handle, caller.identity.index, caller.identity.scope) == ("88.118.20/ADMIN", 300,
                                                                                      "88.118.20")
    with pytest.raises(Refused) as err:
        await auth.answer(b"n" * 16, b"d" * 32,
                          key_answer(rsa_key(2048, 1), "88.118.20/ADMIN", 300, b"n" * 16, b"d" * 32),
                          "10.1.0.2", "hs-tcp")
    assert err.value.code == RC.AUTHENTICATION_FAILED


async def test_a_key_identity_writes_over_the_handle_protocol(live):
    await create(live, "88.118.20", {"owner": "Keyed Co", "publicKey": KEY_PEM})
    url = HandleValue(1, "URL", b"https://keyed.example/1")
    async with HandleClient("127.0.0.1", live.running.hs_port) as client:
        await client.create_handle("88.118.20/part-1", [url], PublicKeyAuth("88.118.20/ADMIN", 300, rsa_key()))
    assert [v.data for v in (await live.store.get_handle("88.118.20/part-1")).values] == [url.data]


@pytest.mark.parametrize("body,status,needle", [
    ({"owner": "X", "publicKey": KEY_PEM, "password": "a-long-enough-secret"}, 400, "not both"),
    ({"owner": "X"}, 400, "'password'"),
    ({"owner": "X", "publicKey": 12}, 400, "must be strings"),
    ({"owner": "X", "publicKey": private_pem(rsa_key()).decode()}, 400, "private key: pass the public key"),
    ({"owner": "X", "publicKey": "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----"}, 400,
     "not a readable PEM public key"),
    ({"owner": "X", "publicKey": "nonsense"}, 400, "not a PEM public key"),
    ({"owner": "X", "publicKey": public_pem(rsa_key(1024)).decode()}, 400, "1024 bits"),
    ({"owner": "", "publicKey": KEY_PEM}, 400, "owner is required"),
])
async def test_create_with_a_bad_key_is_refused_and_writes_nothing(live, body, status, needle):
    seq = await live.store.last_seq()
    got, payload = await create(live, "88.118.21", body)
    assert got == status and needle in payload["message"] and payload["handle"] == "88.118.21", payload
    assert await live.store.last_seq() == seq


async def test_add_keys_to_a_prefix_admin(live):
    second, third = public_pem(rsa_key(2048, 1)).decode(), public_pem(dsa_key()).decode()
    status, added = await add_key(live, "88.118.8", {"publicKey": second})
    assert status == 201 and added == {"responseCode": 1, "handle": "88.118.8/ADMIN", "index": 301,
                                       "adminIndex": 101, "identity": "301:88.118.8/ADMIN"}
    status, added = await add_key(live, "88.118.8", {"publicKey": third, "index": 500})
    assert status == 201 and (added["index"], added["adminIndex"]) == (500, 102)
    values = await admin_values(live, "88.118.8")
    assert values[301]["type"] == values[500]["type"] == "HS_PUBKEY" and 300 not in values   # the secret stays hidden
    assert (await live.store.get_admin("88.118.8/ADMIN", 300)) is not None                   # and still works
    r = await live.session.get(f"{live.url}/api/prefixes/88.118.8", headers=live.ent_admin)
    assert r.status == 200
    caller = await live.running.node.core.auth.answer(
        b"n" * 16, b"d" * 32, key_answer(rsa_key(2048, 1), "88.118.8/ADMIN", 301, b"n" * 16, b"d" * 32),
        "10.1.0.3", "hs-tcp")
    assert caller.identity.index == 301


@pytest.mark.parametrize("prefix,body,who,status,needle", [
    ("88.118.8", {"publicKey": KEY_PEM, "index": 300}, "node", 409, "already in use"),
    ("88.118.8", {"publicKey": KEY_PEM, "index": 100}, "node", 409, "already in use"),
    ("88.118.77", {"publicKey": KEY_PEM}, "node", 404, "not allocated"),
    ("88..1", {"publicKey": KEY_PEM}, "node", 400, "invalid prefix"),
    ("88.118.8", {"publicKey": KEY_PEM}, "ent", 403, "not the node admin"),
    ("88.118.8", {"publicKey": KEY_PEM}, "none", 401, "authentication"),
    ("88.118.8", {"publicKey": KEY_PEM, "index": 0}, "node", 400, "index must be"),
    ("88.118.8", {"publicKey": KEY_PEM, "index": -1}, "node", 400, "index must be"),
    ("88.118.8", {"publicKey": KEY_PEM, "index": "301"}, "node", 400, "index must be"),
    ("88.118.8", {"publicKey": KEY_PEM, "index": True}, "node", 400, "index must be"),
    ("88.118.8", {"publicKey": KEY_PEM, "index": 2 ** 32}, "node", 400, "index must be"),
    ("88.118.8", {}, "node", 400, "'publicKey'"),
    ("88.118.8", {"publicKey": ["x"]}, "node", 400, "'publicKey'"),
    ("88.118.8", ["not", "an", "object"], "node", 400, "object"),
    ("88.118.8", {"publicKey": private_pem(rsa_key()).decode()}, "node", 400, "private key: pass the public key"),
    ("88.118.8", {"publicKey": "garbage"}, "node", 400, "not a PEM public key"),
    ("88.118.8", {"publicKey": public_pem(rsa_key(1024)).decode()}, "node", 400, "1024 bits"),
])
async def test_add_key_refusals_write_nothing(live, prefix, body, who, status, needle):
    headers = {"node": live.node_admin, "ent": live.ent_admin, "none": {}}[who]
    seq = await live.store.last_seq()
    got, payload = await add_key(live, prefix, body, headers)
    assert got == status and needle in payload["message"], payload
    assert set(payload) == {"responseCode", "handle", "message"}
    assert await live.store.last_seq() == seq


async def test_add_key_with_a_body_that_is_no_json(live):
    r = await live.session.post(f"{live.url}/api/prefixes/88.118.8/keys", data=b"{not json",
                                headers={**live.node_admin, "Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["message"]


async def test_admin_passwd_replaces_the_node_admin_secret_of_a_running_node(live, settings):
    def run_cli():
        return CliRunner().invoke(cli, ["--home", str(settings.home), "admin", "passwd", "--password-stdin"],
                                  input="recovered-node-secret-01\n", catch_exceptions=False,
                                  env={"IDNODE_HOME": None, "IDNODE_CONFIG": None, "IDNODE_ADMIN_PASSWORD": None})

    result = await asyncio.to_thread(run_cli)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    r = await live.session.get(f"{live.url}/api/prefixes", headers=basic("300:0.NA/88.118", NODE_PASSWORD))
    assert r.status == 401
    r = await live.session.get(f"{live.url}/api/prefixes", headers=basic("300:0.NA/88.118", "recovered-node-secret-01"))
    assert r.status == 200
