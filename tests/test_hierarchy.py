"""The node in the hierarchy, with real node processes on loopback: a
top-level node (88) that has delegated 88.118 to a secondary node, which has
delegated the enterprise prefix 88.118.8 to an enterprise node, which holds
88.118.8's identifiers. The project's client walks the referrals down."""

from __future__ import annotations

import asyncio
import time

import pytest

from protocol.codes import RC
from protocol.handle import OpFlag, ResolutionRequest
from resolver.hs.client import HandleClient, HandleResponseError
from tests.processes import run, serving_workers

PO = "88.118.8/PO-2026-000123"


def ok(home, *args, input: str | None = None) -> str:
    proc = run(*args, home=home, input=input)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def enterprise(tmp_path):
    """The enterprise's own node: it homes 88.118.8 and holds its purchase order."""
    home = tmp_path / "enterprise"
    ok(home, "init")
    ok(home, "prefix", "create", "88.118.8", "--owner", "Acme")
    ok(home, "register", PO, "--url", "https://acme.example/po/123")
    with serving_workers(home, 1) as served:
        yield served


@pytest.fixture
def secondary(tmp_path, enterprise):
    """The secondary node: 88.118.8 allocated here, delegated to the enterprise node."""
    home = tmp_path / "secondary"
    ok(home, "init")
    ok(home, "prefix", "create", "88.118.8", "--owner", "Acme")
    ok(home, "register", "88.118.8/kept-here", "--url", "https://acme.example/kept")
    ok(home, "prefix", "delegate", "88.118.8", "--site", f"127.0.0.1:{enterprise.hs_port}")
    with serving_workers(home, 1) as served:
        yield served, home


@pytest.fixture
def top(tmp_path, secondary):
    """The top-level node: its prefix 88, and 88.118 delegated to the secondary node."""
    served, _ = secondary
    home = tmp_path / "top"
    ok(home, "init", "--prefix", "88")
    ok(home, "prefix", "create", "88.118", "--owner", "Greater Bay Area secondary node")
    ok(home, "prefix", "delegate", "88.118", "--site", f"127.0.0.1:{served.hs_port}")
    with serving_workers(home, 1) as top_served:
        yield top_served


def test_the_walk_from_the_top_level_node_down_to_the_enterprise_node(tmp_path, top, secondary, enterprise):
    t, s, e = (f"127.0.0.1:{n.hs_port}" for n in (top, secondary[0], enterprise))
    walked = run("resolve", PO, "--hs", t, "--recursive", home=tmp_path / "client")
    assert walked.returncode == 0, walked.stderr
    assert walked.stdout.splitlines()[0] == "1 URL https://acme.example/po/123"
    assert walked.stderr.splitlines() == [f"hop 1: {t}: referred to {s} by 0.NA/88.118",
                                          f"hop 2: {s}: referred to {e} by 0.NA/88.118.8",
                                          f"hop 3: {e}: answered"]
    kept = run("resolve", "88.118.8/kept-here", "--hs", t, "--recursive", home=tmp_path / "client")
    assert kept.returncode == 0 and kept.stderr.splitlines()[-1] == f"hop 2: {s}: answered"
    record = run("resolve", "0.NA/88.118", "--hs", t, home=tmp_path / "client")
    assert record.returncode == 0 and f'"port":{secondary[0].hs_port}' in record.stdout     # the prefix record
    # Prefix records, as a Handle.Net walk reads them: each node names the next; the enterprise node names itself.
    walked = run("resolve", "0.NA/88.118.8", "--hs", t, "--recursive", home=tmp_path / "client")
    assert walked.returncode == 0 and walked.stderr.splitlines()[-1] == f"hop 2: {s}: answered"
    assert f'"port":{enterprise.hs_port}' in walked.stdout
    own = run("resolve", "0.NA/88.118.8", "--hs", e, home=tmp_path / "client")
    assert own.returncode == 0 and f'"port":{enterprise.hs_port}' in own.stdout and "HS_ADMIN admin 300:0.NA/88.118" \
        in own.stdout
    outside = run("resolve", "88.200/x", "--hs", t, home=tmp_path / "client")
    assert outside.returncode == 1 and "response code 301" in outside.stderr              # not allocated under 88


@pytest.fixture
def resolving(tmp_path, top):
    """A node of another secondary prefix (88.200) that resolves for its
    clients: recursion on, the top-level node its root."""
    home = tmp_path / "resolving"
    ok(home, "init", "--prefix", "88.200")
    env = {"IDNODE_UPSTREAM_RECURSION": "true", "IDNODE_UPSTREAM_ROOTS": f"127.0.0.1:{top.hs_port}"}
    with serving_workers(home, 1, env=env) as served:
        yield served


async def asked(port: int, handle: str, transport: str):
    """The reply a Handle client that sets REC (as Handle.Net's does) gets."""
    async with HandleClient("127.0.0.1", port, transport=transport, timeout=20.0) as client:
        request = client.request(ResolutionRequest(handle), op_flags=OpFlag.REC | OpFlag.CA | OpFlag.PO)
        try:
            return (await client.send(request))[0]
        except HandleResponseError as exc:
            return exc.reply


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_recursive_node_resolves_through_all_three_for_its_client(tmp_path, resolving, transport):
    """The resolving node asks its root (the top-level node), which refers it
    to the secondary node, which refers it to the enterprise node."""
    reply = asyncio.run(asked(resolving.hs_port, PO, transport))
    assert reply.response_code == RC.SUCCESS and OpFlag.AT not in reply.op_flags      # not its own answer
    assert [(v.type, v.data) for v in reply.body.values][0] == ("URL", b"https://acme.example/po/123")
    missing = asyncio.run(asked(resolving.hs_port, "88.118.8/unknown", transport))
    assert missing.response_code == RC.HANDLE_NOT_FOUND                               # the enterprise node's word
    shown = run("resolve", PO, "--hs", f"127.0.0.1:{resolving.hs_port}", home=tmp_path / "client")
    assert shown.returncode == 0 and shown.stdout.startswith("1 URL https://acme.example/po/123"), shown.stderr


@pytest.mark.parametrize("udp", [False, True])
def test_the_client_follows_the_referral_to_the_enterprise_node(tmp_path, secondary, enterprise, udp):
    served, _ = secondary
    at = f"127.0.0.1:{served.hs_port}"
    transport = ["--udp"] if udp else []
    plain = run("resolve", PO, "--hs", at, *transport, home=tmp_path / "client")
    assert plain.returncode == 1 and "response code 302" in plain.stderr             # not here: a referral
    walked = run("resolve", PO, "--hs", at, "--recursive", *transport, home=tmp_path / "client")
    assert walked.returncode == 0, walked.stderr
    assert walked.stdout.splitlines()[0] == "1 URL https://acme.example/po/123"
    assert walked.stderr.splitlines() == [
        f"hop 1: {at}: referred to 127.0.0.1:{enterprise.hs_port} by 0.NA/88.118.8",
        f"hop 2: 127.0.0.1:{enterprise.hs_port}: answered"]
    kept = run("resolve", "88.118.8/kept-here", "--hs", at, "--recursive", home=tmp_path / "client")
    assert kept.stdout.startswith("1 URL https://acme.example/kept") and kept.stderr == f"hop 1: {at}: answered\n"


def test_a_miss_at_the_end_of_the_walk_is_not_found(tmp_path, secondary, enterprise):
    served, _ = secondary
    walked = run("resolve", "88.118.8/unknown", "--hs", f"127.0.0.1:{served.hs_port}", "--recursive",
                 home=tmp_path / "client")
    assert walked.returncode == 1 and "not found" in walked.stderr
    assert "hop 2: " in walked.stderr


def test_a_referral_loop_ends_the_walk(tmp_path):
    """A node delegating a prefix to itself: the client stops at the second visit."""
    home = tmp_path / "looping"
    ok(home, "init")
    ok(home, "prefix", "create", "88.118.8", "--owner", "Acme")
    with serving_workers(home, 1) as served:
        at = f"127.0.0.1:{served.hs_port}"
        ok(home, "prefix", "delegate", "88.118.8", "--site", at)
        walked = run("resolve", PO, "--hs", at, "--recursive", home=tmp_path / "client")
    assert walked.returncode == 1 and f"referral loop: {at} was asked already" in walked.stderr


def test_outside_the_nodes_prefixes_is_not_responsible(tmp_path, secondary):
    served, _ = secondary
    walked = run("resolve", "86.100.1/x", "--hs", f"127.0.0.1:{served.hs_port}", "--recursive",
                 home=tmp_path / "client")
    assert walked.returncode == 1 and "response code 301" in walked.stderr


def until(check, what: str, seconds: float = 60.0):
    """Poll ``check()`` until it returns something true (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def test_the_outbox_publishes_prefix_records_to_the_top_level_node_across_its_outage(tmp_path):
    """The secondary node keeps its enterprise prefixes' records at the
    top-level node, as the identity the top-level node made with its key;
    changes made while the top-level node is down reach it once it is back."""
    top_home, home = tmp_path / "top", tmp_path / "secondary"
    ok(top_home, "init", "--prefix", "88")
    ok(home, "init")
    (tmp_path / "secondary.pem").write_text(ok(home, "key", "show"))
    ok(top_home, "prefix", "create", "88.118", "--owner", "GBA", "--public-key", tmp_path / "secondary.pem")

    def at_top(port: int, handle: str):
        return run("resolve", handle, "--hs", f"127.0.0.1:{port}", home=tmp_path / "client")

    with serving_workers(top_home, 1) as top:
        port = top.hs_port
        env = {"IDNODE_UPSTREAM_PUBLISH_TO": f"127.0.0.1:{port}"}
        with serving_workers(home, 2, env=env) as secondary:
            ok(home, "prefix", "create", "88.118.8", "--owner", "Acme")        # while the node serves
            published = until(lambda: (r := at_top(port, "0.NA/88.118.8")).returncode == 0 and r, "published")
            assert f'"port":{secondary.hs_port}' in published.stdout                # served by the secondary
            assert "HS_ADMIN admin 300:88.118/ADMIN" in published.stdout           # kept by its identity there
            assert "unpublished: 0" in ok(home, "upstream", "status")
    with serving_workers(home, 1, env=env) as secondary:                       # the top-level node is down
        ok(home, "prefix", "delegate", "88.118.8", "--site", "192.0.2.8:2641")
        ok(home, "prefix", "create", "88.118.9", "--owner", "Other")
        status = until(lambda: (s := ok(home, "upstream", "status")).count("tries ") == 2 and s, "tried")
        assert "unpublished: 2" in status and "last error: " in status          # kept, with why
        with serving_workers(top_home, 1, hs_port=port):                       # back, where it was
            until(lambda: "unpublished: 0" in ok(home, "upstream", "status"), "caught up")
            delegated = at_top(port, "0.NA/88.118.8")
            assert delegated.returncode == 0 and '"address":"192.0.2.8"' in delegated.stdout.replace(" ", "")
            assert at_top(port, "0.NA/88.118.9").returncode == 0
            referred = at_top(port, "88.118.8/PO-1")                            # the top refers there directly
            assert referred.returncode == 1 and "response code 302" in referred.stderr
            ok(home, "prefix", "disable", "88.118.9")
            until(lambda: at_top(port, "0.NA/88.118.9").returncode == 1, "withdrawn")
        assert "unpublished: 0" in ok(home, "upstream", "status")
