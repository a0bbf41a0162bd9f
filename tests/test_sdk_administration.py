"""Administration from clients built as the SDKs are, against `idnode serve
--workers 2` in its own process.

* As Handle.Net's ``HandleResolver``: get the site, set up a session checked
  with the HS_SITE key, then create / add / modify / remove / delete, each
  message on a new TCP connection, so that any worker may get any of them
  (the session and the pending challenge must be every worker's).
* As the CAICT and IDPointer SDKs: an IDIS login on one connection with a key
  identity added by ``idnode prefix add-key``, the same cycle on that
  connection without credentials, and a second connection that is refused.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from protocol.codes import RC
from protocol.handle.session import KeyExchange
from protocol.values import HandleValue
from protocol.valuetypes import AdminRef
from resolver.hs.client import HandleClient, HandleResponseError, PublicKeyAuth, SecretKeyAuth
from tests.processes import serving_workers

ENT_PASSWORD = "enterprise-secret-0001"
ENT = SecretKeyAuth("88.118.8/ADMIN", 300, ENT_PASSWORD.encode())
ADMIN = HandleValue(100, "HS_ADMIN", AdminRef("88.118.8/ADMIN", 300).encode())


@pytest.fixture
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def node(tmp_path, key):
    """A home with prefix 88.118.8, its secret at 300 and the public half of ``key`` at 301."""
    from tests.cli.conftest import Idnode
    idnode = Idnode(tmp_path / "home")
    idnode.ok("init")
    idnode.ok("prefix", "create", "88.118.8", "--owner", "Acme", "--password-stdin", input=ENT_PASSWORD + "\n")
    pem = tmp_path / "admin2.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    idnode.ok("prefix", "add-key", "88.118.8", str(pem), "--index", "301")
    return idnode


async def cycle(client: HandleClient, handle: str, auth=None) -> list[int]:
    """create / add / modify / remove / delete; the indexes seen after each change (read over TCP)."""
    seen = []
    async with HandleClient("127.0.0.1", client.channel.port) as reader:
        async def indexes() -> list[int]:
            try:
                return [v.index for v in (await reader.resolve(handle)).values]
            except HandleResponseError as exc:
                return [-exc.code]
        await client.create_handle(handle, [HandleValue(1, "URL", b"https://acme.example/1"), ADMIN], auth)
        seen.append(await indexes())
        await client.add_values(handle, [HandleValue(3, "DESC", b"three")], auth)
        seen.append(await indexes())
        await client.modify_values(handle, [HandleValue(1, "URL", b"https://acme.example/1-v2")], auth)
        seen.append(await indexes())
        await client.remove_values(handle, [3], auth)
        seen.append(await indexes())
        await client.delete_handle(handle, auth)
        seen.append(await indexes())
    return seen


EXPECTED = [[1, 100], [1, 3, 100], [1, 3, 100], [1, 100], [-RC.HANDLE_NOT_FOUND]]


async def test_handle_net_style_sessions_across_workers_and_idis_login(node, key):
    key_auth = PublicKeyAuth("88.118.8/ADMIN", 301, key)
    with serving_workers(node.home, 2) as served:
        port = served.hs_port
        for n, exchange in enumerate((KeyExchange.DH, KeyExchange.CIPHER_CLIENT, KeyExchange.CIPHER_SERVER)):
            async with HandleClient("127.0.0.1", port, certify=True, keep_connection=False) as client:
                await client.setup_session(ENT, key_exchange=exchange)
                assert await cycle(client, f"88.118.8/hdl-{n}", ENT) == EXPECTED
                await client.terminate_session()
                assert client.channel.connects >= 9            # a connection per message, as HandleResolver
        async with HandleClient("127.0.0.1", port) as sdk, HandleClient("127.0.0.1", port) as other:
            await sdk.login(key_auth)
            assert await cycle(sdk, "88.118.8/sdk-1") == EXPECTED
            assert sdk.channel.connects == 1
            with pytest.raises(HandleResponseError) as err:
                await other.create_handle("88.118.8/sdk-2", [ADMIN])
            assert err.value.code == RC.AUTHENTICATION_NEEDED
