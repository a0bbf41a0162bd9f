"""Recursion: the node resolving elsewhere for a client that sets REC, against
upstream servers the test controls (tests/upstreams.py): what the client
gets from a good, a lying, a looping, a slow and a silent upstream, who may
recurse, and the bounds (pending resolutions, kept answers, breakers)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from protocol.codes import RC
from protocol.handle import OpFlag, ResolutionRequest
from registry import provision
from resolver.hs.client import HandleClient, HandleResponseError
from resolver.server import serving
from resolver.settings import load_settings
from tests.conftest import provision_node, store_of
from tests.upstreams import Upstream, site_value

FAR = "88.118.9/far-away"           # under 88.118.9, delegated to the test's upstream
ELSEWHERE = "88.300.1/x"            # under no prefix of this node: the roots are asked


def node_settings(tmp_path, **upstream):
    overrides = {"node.home": str(tmp_path / "home"), "http.port": 0, "handle.port": 0, "auth.failure_delay": 0.0,
                 "upstream.recursion": True, "upstream.timeout": 0.5, "upstream.deadline": 2.0}
    overrides.update({f"upstream.{k}": v for k, v in upstream.items()})
    return load_settings(env={}, overrides=overrides)


async def delegate(settings, prefix: str, port: int) -> None:
    store = store_of(settings)
    await store.open()
    try:
        await provision.delegate_prefix(store, prefix, site_value(port), actor="test")
    finally:
        await store.close()


class Node:
    def __init__(self, running) -> None:
        self.running = running

    async def ask(self, handle: str, *, recursive: bool = True, transport: str = "tcp", hops: int = 0):
        """The whole reply message to a resolution (AT and the code are in it)."""
        async with HandleClient("127.0.0.1", self.running.hs_port, transport=transport, timeout=10.0) as client:
            flags = (OpFlag.REC if recursive else OpFlag(0)) | OpFlag.CA | OpFlag.PO
            request = client.request(ResolutionRequest(handle), op_flags=flags, recursion_count=hops)
            try:
                return (await client.send(request))[0]
            except HandleResponseError as exc:
                return exc.reply

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.running.url}/metrics") as r:
                return await r.text()


@pytest.fixture
async def upstream():
    up = await Upstream().start()
    yield up
    await up.stop()


async def start(tmp_path, up: Upstream | None, **upstream):
    settings = node_settings(tmp_path, **upstream)
    await provision_node(settings)
    if up is not None:
        await delegate(settings, "88.118.9", up.port)
    return settings


@pytest.fixture
async def node(tmp_path, upstream):
    settings = await start(tmp_path, upstream)
    async with serving(settings) as running:
        yield Node(running)


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_a_recursive_answer_is_the_other_nodes_not_authoritative_and_kept(node, upstream):
    for transport in ("tcp", "udp"):
        reply = await node.ask(FAR, transport=transport)
        assert reply.response_code == RC.SUCCESS
        assert [(v.type, v.data) for v in reply.body.values] == [("URL", b"https://upstream.example/x")]
        assert OpFlag.AT not in reply.op_flags                        # another node's answer
    assert len(upstream.requests) == 1                                # kept for its TTL: asked once
    handle, flags, hops = upstream.requests[0]
    assert handle == FAR and not flags & OpFlag.REC and hops == 1     # the node walks itself, and counts the hop
    referral = await node.ask(FAR, recursive=False)                  # without REC: the referral, as before
    assert referral.response_code == RC.SERVICE_REFERRAL and OpFlag.AT in referral.op_flags
    local = await node.ask("0.NA/88.118.8")                          # the node's own answers stay authoritative
    assert local.response_code == RC.SUCCESS and OpFlag.AT in local.op_flags
    text = await node.metrics()
    assert metric(text, 'idnode_upstream_recursions_total{outcome="answered"}') == 1
    assert metric(text, 'idnode_upstream_recursions_total{outcome="cached"}') == 1
    assert metric(text, f'idnode_upstream_requests_total{{outcome="answered",upstream="{upstream.address}"}}') == 1


async def test_filters_apply_to_the_other_nodes_answer_and_rest_recurses_too(node, upstream):
    reply = await node.ask(FAR)
    assert reply.response_code == RC.SUCCESS
    async with HandleClient("127.0.0.1", node.running.hs_port, timeout=10.0) as client:
        with pytest.raises(HandleResponseError) as none:
            await client.resolve(FAR, types=("EMAIL",))
    assert none.value.code == RC.VALUES_NOT_FOUND
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{node.running.url}/api/handles/{FAR}?recursive=true") as r:
            assert r.status == 200 and (await r.json())["values"][0]["data"]["value"] == "https://upstream.example/x"
        async with session.get(f"{node.running.url}/api/handles/{FAR}") as r:
            assert r.status == 404 and (await r.json())["responseCode"] == RC.SERVICE_REFERRAL


async def test_an_upstream_not_found_is_passed_on_and_kept_for_the_negative_ttl(node, upstream):
    upstream.mode = "not_found"
    for _ in range(2):
        reply = await node.ask(FAR)
        assert reply.response_code == RC.HANDLE_NOT_FOUND and OpFlag.AT not in reply.op_flags
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("mode, code", [("garbage", RC.PROTOCOL_ERROR), ("long_length", RC.PROTOCOL_ERROR),
                                        ("short_length", RC.ERROR), ("slow", RC.ERROR), ("silent", RC.ERROR)])
async def test_a_misbehaving_upstream_gives_a_clear_code_and_nothing_is_kept(node, upstream, mode, code):
    upstream.mode = mode
    reply = await node.ask(FAR)
    assert reply.response_code == code and reply.body.message        # within the node's deadline, with a reason
    upstream.mode = "answer"                                           # it mends: the next request is answered
    reply = await node.ask(FAR)
    assert reply.response_code == RC.SUCCESS


async def test_rest_says_which_upstream_failure_it_was(node, upstream):
    async with aiohttp.ClientSession() as session:
        for mode, status, code in (("garbage", 502, RC.PROTOCOL_ERROR), ("silent", 502, RC.ERROR)):
            upstream.mode = mode
            async with session.get(f"{node.running.url}/api/handles/{FAR}?recursive=true") as r:
                doc = await r.json()
            assert (r.status, doc["responseCode"]) == (status, code) and doc["message"], doc


async def test_a_referral_loop_between_upstreams_is_rc_6(tmp_path, upstream):
    other = await Upstream(mode="refer", refer_to=upstream.port).start()
    upstream.mode, upstream.refer_to = "refer", other.port           # each refers to the other
    try:
        settings = await start(tmp_path, upstream)
        async with serving(settings) as running:
            reply = await Node(running).ask(FAR)
    finally:
        await other.stop()
    assert reply.response_code == RC.RECURSION_COUNT_TOO_HIGH and "loop" in reply.body.message
    assert len(upstream.requests) == 1 and len(other.requests) == 1


async def test_the_walk_follows_referrals_and_keeps_the_prefix_site(tmp_path, upstream):
    root = await Upstream(mode="refer", refer_to=upstream.port, referral="0.NA/88.300").start()
    try:
        settings = await start(tmp_path, None, roots=[root.address])
        async with serving(settings) as running:
            node = Node(running)
            first = await node.ask(ELSEWHERE)
            second = await node.ask("88.300.1/y")                   # the site of 88.300 is known now
    finally:
        await root.stop()
    assert first.response_code == second.response_code == RC.SUCCESS
    assert [h for h, _, _ in root.requests] == [ELSEWHERE]
    assert [h for h, _, _ in upstream.requests] == [ELSEWHERE, "88.300.1/y"]


async def test_without_roots_a_prefix_homed_elsewhere_is_not_served_here(node, upstream):
    reply = await node.ask(ELSEWHERE)
    assert reply.response_code == RC.SERVER_NOT_RESPONSIBLE


async def test_a_client_outside_allow_recursion_from_gets_the_referral_and_no_upstream_is_asked(tmp_path, upstream):
    settings = await start(tmp_path, upstream, allow_recursion_from="10.0.0.0/8")
    async with serving(settings) as running:
        node = Node(running)
        for transport in ("tcp", "udp"):
            reply = await node.ask(FAR, transport=transport)
            assert reply.response_code == RC.SERVICE_REFERRAL
        text = await node.metrics()
    assert upstream.requests == []                                    # not an amplifier
    assert metric(text, 'idnode_upstream_recursions_total{outcome="refused"}') == 2


async def test_recursion_is_off_by_default(tmp_path, upstream):
    settings = await start(tmp_path, upstream, recursion=False)
    async with serving(settings) as running:
        reply = await Node(running).ask(FAR)
    assert reply.response_code == RC.SERVICE_REFERRAL and upstream.requests == []


async def test_a_request_that_crossed_too_many_nodes_is_rc_6(node, upstream):
    reply = await node.ask(FAR, hops=8)
    assert reply.response_code == RC.RECURSION_COUNT_TOO_HIGH and upstream.requests == []


async def test_a_site_that_keeps_failing_is_not_asked_while_its_breaker_is_open(tmp_path, upstream):
    upstream.mode = "garbage"
    settings = await start(tmp_path, upstream, breaker_failures=2, breaker_seconds=3600)
    async with serving(settings) as running:
        node = Node(running)
        for n in range(4):
            reply = await node.ask(f"88.118.9/broken-{n}")
            assert reply.response_code in (RC.PROTOCOL_ERROR, RC.ERROR)
        text = await node.metrics()
    assert len(upstream.requests) == 2                                # the breaker opened after two
    assert metric(text, "idnode_upstream_breakers_open") == 1
    assert metric(text, 'idnode_upstream_requests_total{outcome="breaker_open"') == 2


async def test_recursions_under_way_are_bounded(tmp_path, upstream):
    upstream.mode = "slow"
    settings = await start(tmp_path, upstream, max_pending=1, deadline=3.0, timeout=3.0)
    async with serving(settings) as running:
        node = Node(running)
        first = asyncio.ensure_future(node.ask("88.118.9/one"))
        while not upstream.requests:
            await asyncio.sleep(0.01)
        second = await node.ask("88.118.9/two")
        same = asyncio.ensure_future(node.ask("88.118.9/one"))       # the same identifier waits on the first
        text = await node.metrics()
        assert second.response_code == RC.SERVER_BUSY
        assert metric(text, "idnode_upstream_recursions_pending") == 1
        assert (await first).response_code == RC.ERROR and (await same).response_code == RC.ERROR
    assert [h for h, _, _ in upstream.requests] == ["88.118.9/one"]


async def test_kept_answers_are_bounded(tmp_path, upstream):
    settings = await start(tmp_path, upstream, max_entries=2)
    async with serving(settings) as running:
        node = Node(running)
        for n in range(3):
            assert (await node.ask(f"88.118.9/kept-{n}")).response_code == RC.SUCCESS
        assert (await node.ask("88.118.9/kept-0")).response_code == RC.SUCCESS    # the oldest went first
        text = await node.metrics()
    assert metric(text, 'idnode_upstream_cache_entries{kind="answers"}') == 2
    assert len(upstream.requests) == 4
