"""Administration over the binary protocol with challenge-response, read back through REST."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from protocol.codes import RC
from protocol.handle import ChallengeAnswerRequest, DeleteHandleRequest, encode, make_request
from protocol.values import HandleValue, Reference
from protocol.valuetypes import AdminPerm, AdminRef, PublicKey, VList
from resolver.hs.client import HandleResponseError, PublicKeyAuth, SecretKeyAuth

from .conftest import ENT, NODE_ADMIN, OTHER, PRODUCT, basic, hs_node

H = "88.118.8/PO-2026-000777"
URL = HandleValue(1, "URL", b"https://acme.example/po/777")
EMAIL = HandleValue(2, "EMAIL", b"buyer@acme.example", permissions=0x0C)        # admins only
ADMIN = HandleValue(100, "HS_ADMIN", AdminRef("88.118.8/ADMIN", 300).encode())


def rest_values(doc: dict) -> list[tuple[int, str, object]]:
    return [(v["index"], v["type"], v["data"]["value"]) for v in doc["values"]]


@pytest.mark.parametrize("transport", ["tcp", "http"])
async def test_create_add_modify_remove_delete_then_rest(hs, transport):
    ent_rest = basic("300:88.118.8/ADMIN", "enterprise-secret-0001")
    async with hs.client(transport) as client:
        assert await client.create_handle(H, [URL, EMAIL, ADMIN], ENT) == H
        status, doc = await hs.rest(H)
        assert status == 200 and rest_values(doc)[0] == (1, "URL", "https://acme.example/po/777")
        assert [v["index"] for v in doc["values"]] == [1, 100]                # EMAIL is not public
        status, doc = await hs.rest(H, ent_rest)
        assert [v["index"] for v in doc["values"]] == [1, 2, 100]

        await client.add_values(H, [HandleValue(3, "DESC", "采购订单".encode())], ENT)
        status, doc = await hs.rest(H)
        assert (3, "DESC", "采购订单") in rest_values(doc)

        await client.modify_values(H, [URL.with_(data=b"https://acme.example/po/777-v2")], ENT)
        status, doc = await hs.rest(H)
        assert rest_values(doc)[0] == (1, "URL", "https://acme.example/po/777-v2")

        await client.remove_values(H, [3], ENT)
        status, doc = await hs.rest(H)
        assert [v["index"] for v in doc["values"]] == [1, 100]

        await client.delete_handle(H, ENT)
        status, doc = await hs.rest(H)
        assert status == 404 and doc["responseCode"] == 100
    audit = [(e.actor, e.operation) for e in await hs.store.audit() if e.handle == H]
    assert audit == [("300:88.118.8/ADMIN", op) for op in
                     ("handle.create", "handle.add", "handle.modify", "handle.remove_values", "handle.delete")]
    assert await hs.metric("idnode_requests_total", protocol=f"hs-{transport}", operation="challenge_response",
                           result="success") == 5


async def test_administration_over_udp_is_steered_to_tcp_without_a_challenge(hs):
    """Handle clients administer over TCP (the node's HS_SITE offers UDP for
    queries only); over UDP, whose source anyone may claim, every change is
    refused with RC 2 (the code a Handle client retries over TCP on) and no
    challenge is kept for it."""
    await hs.store.put_handle(H, [URL, ADMIN], mode="create", actor="test")
    async with hs.client("udp") as client:
        calls = [client.create_handle("88.118.8/udp-new", [URL], ENT), client.add_values(H, [EMAIL], ENT),
                 client.modify_values(H, [URL.with_(data=b"https://x.example/")], ENT),
                 client.remove_values(H, [1], ENT), client.delete_handle(H, ENT)]
        for call in calls:
            with pytest.raises(HandleResponseError) as err:
                await call
            assert err.value.code == RC.ERROR and "over TCP" in str(err.value)
    assert len(hs.service.challenges) == 0
    assert await hs.store.get_handle("88.118.8/udp-new") is None
    assert [v.data for v in (await hs.store.get_handle(H)).values] == [URL.data, ADMIN.data]


async def test_values_are_stamped_with_the_server_clock(hs):
    async with hs.client() as client:
        await client.create_handle(H, [URL.with_(timestamp=5)], ENT)
        hs.clock.advance(100)
        await client.add_values(H, [HandleValue(3, "DESC", b"x")], ENT)
    record = await hs.store.get_handle(H)
    assert [(v.index, v.timestamp) for v in record.values] == [(1, int(hs.clock.now) - 100), (3, int(hs.clock.now))]


async def test_wrong_secret_is_403_counted_and_writes_nothing(hs):
    wrong = SecretKeyAuth("88.118.8/ADMIN", 300, b"not-the-secret")
    async with hs.client() as client:
        with pytest.raises(HandleResponseError) as err:
            await client.create_handle(H, [URL], wrong)
    assert err.value.code == RC.AUTHENTICATION_FAILED
    assert await hs.store.get_handle(H) is None
    assert await hs.metric("idnode_auth_failures_total", protocol="hs-tcp") == 1


@pytest.mark.parametrize("version", [(2, 3), (2, 6), (2, 7), (2, 11)])
async def test_secret_key_answer_in_every_version(hs, version):
    """Before 2.7 the answer is SHA-1(secret + data + secret), from 2.7 PBKDF2-HMAC-SHA1."""
    async with hs.client(version=version) as client:
        await client.create_handle(f"{H}-{version[1]}", [URL], ENT)
    assert await hs.store.get_handle(f"{H}-{version[1]}") is not None


async def test_unknown_identity_and_missing_challenge(hs):
    async with hs.client() as client:
        with pytest.raises(HandleResponseError) as err:
            await client.create_handle(H, [URL], SecretKeyAuth("88.118.8/nobody", 300, b"x"))
        assert err.value.code == RC.AUTHENTICATION_FAILED
        with pytest.raises(HandleResponseError) as err:          # no credentials at all
            await client.create_handle(H, [URL], None)
        assert err.value.code == RC.AUTHENTICATION_NEEDED


async def test_enterprise_admin_writes_only_under_its_own_prefix(hs):
    async with hs.client() as client:
        with pytest.raises(HandleResponseError) as err:
            await client.create_handle(H, [URL], OTHER)
        assert err.value.code == RC.NOT_AN_ADMIN
        with pytest.raises(HandleResponseError) as err:
            await client.modify_values(PRODUCT, [URL], OTHER)
        assert err.value.code == RC.NOT_AN_ADMIN
        await client.create_handle("88.118.9/theirs", [URL], OTHER)
        await client.create_handle("88.118.9/by-node-admin", [URL], NODE_ADMIN)       # the node admin: anywhere
        await client.delete_handle(PRODUCT, NODE_ADMIN)
    assert await hs.store.get_handle("88.118.9/theirs") is not None
    assert await hs.store.get_handle(PRODUCT) is None


async def test_hs_admin_of_the_handle_delegates_to_another_identity(hs):
    """alice holds a secret key under 88.118.8 and is named by one handle's HS_ADMIN
    (through an HS_VLIST group): she may modify that handle and no other."""
    await hs.store.put_handle("88.118.8/alice", [HandleValue(300, "HS_SECKEY", b"alice-secret-000", permissions=0x0C)],
                              mode="create", actor="test")
    await hs.store.put_handle("88.118.8/group", [HandleValue(200, "HS_VLIST", _vlist(("88.118.8/alice", 300)))],
                              mode="create", actor="test")
    delegated = AdminRef("88.118.8/group", 200, int(AdminPerm.MODIFY_VALUE | AdminPerm.ADD_VALUE)).encode()
    await hs.store.put_handle("88.118.8/shared", [URL, HandleValue(100, "HS_ADMIN", delegated)], mode="create",
                              actor="test")
    alice = SecretKeyAuth("88.118.8/alice", 300, b"alice-secret-000")
    async with hs.client() as client:
        await client.modify_values("88.118.8/shared", [URL.with_(data=b"https://alice.example/")], alice)
        with pytest.raises(HandleResponseError) as err:                # no DELETE_HANDLE bit
            await client.delete_handle("88.118.8/shared", alice)
        assert err.value.code == RC.NOT_AN_ADMIN
        with pytest.raises(HandleResponseError) as err:                # not named by PRODUCT
            await client.modify_values(PRODUCT, [URL], alice)
        assert err.value.code == RC.NOT_AN_ADMIN
    status, doc = await hs.rest("88.118.8/shared")
    assert rest_values(doc)[0] == (1, "URL", "https://alice.example/")
    assert [e.actor for e in await hs.store.audit() if e.handle == "88.118.8/shared"][-1] == "300:88.118.8/alice"


def _vlist(*refs: tuple[str, int]) -> bytes:
    return VList(tuple(Reference(h, i) for h, i in refs)).encode()


async def test_public_key_authentication(hs):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    pub = PublicKey.from_numbers("RSA_PUB_KEY", {"e": numbers.e, "n": numbers.n}).encode()
    await hs.store.put_handle("88.118.8/robot", [HandleValue(300, "HS_PUBKEY", pub)], mode="create", actor="test")
    owned = [URL, HandleValue(100, "HS_ADMIN", AdminRef("88.118.8/robot", 300).encode())]
    await hs.store.put_handle("88.118.8/robot-owned", owned, mode="create", actor="test")
    async with hs.client() as client:
        await client.modify_values("88.118.8/robot-owned", [URL.with_(data=b"https://robot.example/")],
                                   PublicKeyAuth("88.118.8/robot", 300, key))
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(HandleResponseError) as err:                 # someone else's key
            await client.delete_handle("88.118.8/robot-owned", PublicKeyAuth("88.118.8/robot", 300, other))
        assert err.value.code == RC.AUTHENTICATION_FAILED
    status, doc = await hs.rest("88.118.8/robot-owned")
    assert rest_values(doc)[0] == (1, "URL", "https://robot.example/")
    assert [e.actor for e in await hs.store.audit() if e.handle == "88.118.8/robot-owned"][-1] == "300:88.118.8/robot"


async def test_authenticated_resolution_shows_admin_values_never_secrets(hs):
    async with hs.client() as client:
        anonymous = await client.resolve(PRODUCT)
        assert 2 not in [v.index for v in anonymous.values]
        admin = await client.resolve(PRODUCT, auth=ENT)
        assert [v.index for v in admin.values] == [1, 2, 3, 100]
        other = await client.resolve(PRODUCT, auth=OTHER)                # another prefix: public only
        assert 2 not in [v.index for v in other.values]
        own = await client.resolve("88.118.8/ADMIN", auth=ENT)
        assert [v.type for v in own.values] == ["HS_ADMIN"]             # the HS_SECKEY never leaves
        with pytest.raises(HandleResponseError) as err:
            await client.resolve("88.118.8/ADMIN", types=["HS_SECKEY"], auth=NODE_ADMIN)
        assert err.value.code == RC.VALUES_NOT_FOUND


async def test_operation_errors(hs):
    async with hs.client() as client:
        for call, code in [
            (client.create_handle(PRODUCT, [URL], ENT), RC.HANDLE_ALREADY_EXISTS),
            (client.add_values(PRODUCT, [URL], ENT), RC.VALUE_ALREADY_EXISTS),
            (client.remove_values(PRODUCT, [55], ENT), RC.VALUES_NOT_FOUND),
            (client.modify_values(PRODUCT, [HandleValue(55, "URL", b"x")], ENT), RC.VALUES_NOT_FOUND),
            (client.delete_handle("88.118.8/absent", ENT), RC.HANDLE_NOT_FOUND),
            (client.create_handle("88.118.77/x", [URL], NODE_ADMIN), RC.SERVER_NOT_RESPONSIBLE),
            (client.create_handle("88.118.8/" + "\x01bad", [URL], ENT), RC.INVALID_HANDLE),
            (client.add_values(PRODUCT, [], ENT), RC.INVALID_VALUE),
            (client.create_handle(H, [URL, URL], ENT), RC.VALUE_ALREADY_EXISTS),
            (client.create_handle(H, [HandleValue(1, "", b"x")], ENT), RC.INVALID_VALUE),
        ]:
            with pytest.raises(HandleResponseError) as err:
                await call
            assert err.value.code == code, (code, err.value)
        await client.add_values(PRODUCT, [URL.with_(data=b"https://acme.example/over")], ENT, overwrite=True)
    assert (await hs.store.get_handle(PRODUCT)).values[0].data == b"https://acme.example/over"


async def test_read_only_value_cannot_be_modified(hs):
    await hs.store.put_handle(H, [URL.with_(permissions=0x0A)], mode="create", actor="test")     # no admin write
    async with hs.client() as client:
        with pytest.raises(HandleResponseError) as err:
            await client.modify_values(H, [URL], ENT)
    assert err.value.code == RC.INSUFFICIENT_PERMISSIONS


async def test_list_handles_over_several_messages(hs):
    items = [(f"88.118.8/item-{i:04d}", [URL]) for i in range(1100)]
    await hs.store.register_batch(items, overwrite=False, actor="test")
    async with hs.client() as client:
        handles = await client.list_handles("88.118.8", ENT)
        with pytest.raises(HandleResponseError) as err:
            await client.list_handles("88.118.8", OTHER)
        assert err.value.code == RC.NOT_AN_ADMIN
        with pytest.raises(HandleResponseError) as err:
            await client.list_handles("88.118.77", NODE_ADMIN)
        assert err.value.code == RC.SERVER_NOT_RESPONSIBLE
    assert len(handles) == 1102 and handles == sorted(handles, key=str.lower)
    assert {PRODUCT, "88.118.8/ADMIN", "88.118.8/item-1099"} <= set(handles)


async def test_mint_new_suffix(hs):
    async with hs.client() as client:
        minted = await client.create_handle("88.118.8/order-", [URL], ENT, mint=True)
    assert minted.startswith("88.118.8/order-") and len(minted) > len("88.118.8/order-")
    assert (await hs.rest(minted))[0] == 200


async def test_repeated_failures_from_one_address_are_locked_out(tmp_path):
    async with hs_node(tmp_path, **{"auth.lockout_failures": 3}) as hs:
        wrong = SecretKeyAuth("88.118.8/ADMIN", 300, b"guess")
        async with hs.client() as client:
            for _ in range(3):
                with pytest.raises(HandleResponseError):
                    await client.create_handle(H, [URL], wrong)
            with pytest.raises(HandleResponseError) as err:               # even the right secret, for now
                await client.create_handle(H, [URL], ENT)
            assert err.value.code == RC.AUTHENTICATION_FAILED
            hs.clock.advance(301)                                           # auth.lockout_seconds
            await client.create_handle(H, [URL], ENT)
        assert await hs.metric("idnode_auth_failures_total", protocol="hs-tcp") == 4


async def test_challenge_answered_too_late(hs):
    async with hs.client() as client:
        request = client.request(DeleteHandleRequest(PRODUCT))
        (challenge,) = await client.exchange(encode(request), request.request_id)
        assert challenge.response_code == RC.AUTHENTICATION_NEEDED and challenge.envelope.session_id
        hs.clock.advance(61)                                               # handle.challenge_timeout
        answer = _answer(client, request, challenge, ENT)
        (reply,) = await client.exchange(answer[0], answer[1])
    assert reply.response_code == RC.AUTHENTICATION_TIMEOUT
    assert await hs.store.get_handle(PRODUCT) is not None


def _answer(client, request, challenge, auth) -> tuple[bytes, int]:
    body = ChallengeAnswerRequest(auth.auth_type, auth.handle, auth.index, auth.answer(challenge))
    msg = make_request(body, request_id=request.request_id + 1000, now=int(client.clock()),
                       session_id=challenge.envelope.session_id)
    return encode(msg), msg.request_id


async def test_an_answer_is_used_once_over_any_transport_from_the_same_address(hs):
    async with hs.client() as client:
        request = client.request(DeleteHandleRequest(PRODUCT))
        (challenge,) = await client.exchange(encode(request), request.request_id)
        answer, rid = _answer(client, request, challenge, ENT)
        async with hs.client("http") as elsewhere:         # same host, other transport: still the same address
            (first,) = await elsewhere.exchange(answer, rid, PRODUCT)
        (replay,) = await client.exchange(answer, rid)
    assert first.response_code == RC.SUCCESS and first.request_id == rid
    assert replay.response_code == RC.AUTHENTICATION_TIMEOUT


async def test_pending_challenges_are_bounded_and_a_newcomer_is_always_challenged(tmp_path):
    """A full table forgets its oldest challenge instead of refusing the next
    client; a forgotten challenge's answer finds nothing pending."""
    async with hs_node(tmp_path, **{"handle.max_challenges": 4}) as hs:     # 3 for TCP and HTTP, 1 for UDP
        async with hs.client() as client:
            pending = []
            for _ in range(4):
                request = client.request(DeleteHandleRequest(PRODUCT))
                (reply,) = await client.exchange(encode(request), request.request_id)
                assert reply.response_code == RC.AUTHENTICATION_NEEDED
                pending.append((request, reply))
            assert len(hs.service.challenges) == 3
            answer, rid = _answer(client, *pending[0], ENT)
            (forgotten,) = await client.exchange(answer, rid)
            answer, rid = _answer(client, *pending[3], ENT)
            (latest,) = await client.exchange(answer, rid)
        assert forgotten.response_code == RC.AUTHENTICATION_TIMEOUT
        assert latest.response_code == RC.SUCCESS and await hs.store.get_handle(PRODUCT) is None
