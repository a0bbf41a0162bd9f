"""The node in the hierarchy, with real node processes on loopback: a
top-level node (88) that has delegated 88.118 to a secondary node, which has
delegated the enterprise prefix 88.118.8 to an enterprise node, which holds
88.118.8's identifiers. The project's client walks the referrals down."""

from __future__ import annotations

import pytest

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
