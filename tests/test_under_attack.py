"""The attacks of issue 9, each against a real `idnode serve` process: the
node keeps serving real users while someone tries to knock it over.

Counts and bounds only: every duration below is a safety net or the width
of a bound computed from what was measured, never an assertion on speed.
Loopback addresses 127.0.0.0/8 stand for distinct clients (each /24 a
source prefix); the UDP rate limit's loopback exemption is switched off
where the test is about that limit.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing as mp
import socket
import struct
import time
from urllib.parse import quote

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.wire import RC_AT, hs_requests
from protocol.codes import RC
from protocol.handle import CreateHandleRequest, ResolutionRequest, encode, make_request
from protocol.handle.codes import OpFlag
from protocol.values import HandleValue
from resolver.hs.client import HandleClient, SecretKeyAuth
from tests.processes import serving_workers

ENT_PASSWORD = "enterprise-secret-0001"
ENT = SecretKeyAuth("88.118.8/ADMIN", 300, ENT_PASSWORD.encode())
KNOWN = "88.118.8/known"
BIG = "88.118.8/big"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{quote(user)}:{password}".encode()).decode()}


@pytest.fixture
def home(tmp_path):
    from tests.cli.conftest import Idnode
    idnode = Idnode(tmp_path / "home")
    idnode.ok("init")
    idnode.ok("prefix", "create", "88.118.8", "--owner", "Acme", "--password-stdin", input=ENT_PASSWORD + "\n")
    idnode.ok("register", KNOWN, "--url", "https://acme.example/known")
    idnode.ok("register", BIG, "--url", "https://acme.example/big", "--value", "DESC=" + "b" * 60_000)
    return idnode.home


def udp_socket(address: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def drain(s: socket.socket, settle: float = 0.5) -> list[bytes]:
    """Every datagram that arrives until none has for ``settle`` seconds."""
    s.settimeout(settle)
    out = []
    while True:
        try:
            out.append(s.recv(65536))
        except socket.timeout:
            return out


def rc(datagram: bytes) -> int:
    return struct.unpack_from(">I", datagram, RC_AT)[0]


async def metric(url: str, name: str, **labels: str) -> float:
    """A sample of the node's /metrics (labels in any order; 0 when absent)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as r:
        text = await r.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


# -- 1. UDP amplification ----------------------------------------------------------------------
def test_udp_answers_neither_amplify_nor_flood_a_claimed_source(home):
    env = {"IDNODE_HANDLE_UDP_RATE_EXEMPT": ""}           # loopback is limited like any network here
    with serving_workers(home, 1, env=env) as node:
        url, port = node.url, node.hs_port
        s = udp_socket("127.0.0.2")
        (big,) = hs_requests([BIG])
        s.sendto(big, ("127.0.0.1", port))
        (reply,) = drain(s)
        assert rc(reply) == RC.ERROR and len(reply) <= len(big) + 20    # a 60 kB record: one small refusal

        (known,) = hs_requests([KNOWN])
        sent = 20_000
        start = time.monotonic()
        got = []
        s.setblocking(False)
        for i in range(20_000):
            try:
                s.sendto(known, ("127.0.0.1", port))
            except BlockingIOError:          # the socket's send buffer is full: not sent
                sent -= 1
            if i % 100 == 0:
                try:
                    while True:
                        got.append(s.recv(65536))
                except BlockingIOError:
                    pass
        got += drain(s)
        elapsed = time.monotonic() - start
        answered = sum(rc(d) == RC.SUCCESS for d in got)
        slipped = sum(rc(d) == RC.ERROR for d in got)
        # At most the burst plus the rate over the whole exchange (defaults: 400, 200/s).
        assert 400 <= answered <= 400 + 200 * elapsed + 1
        assert slipped > 0 and answered + slipped < sent
        factor = sum(map(len, got)) / (sent * len(known))
        assert factor < 1.0, factor                                    # fewer bytes out than in
        assert asyncio.run(metric(url, "idnode_requests_dropped_total", protocol="hs-udp", reason="rate_limit")) > 0
        print(f"amplification: big record {len(reply)}/{len(big)} bytes; {sent} requests from one source: "
              f"{answered} answered, {slipped} slipped, {len(got)} datagrams, factor {factor:.3f}")
        other = udp_socket("127.0.1.2")                                # another prefix is answered meanwhile
        other.sendto(known, ("127.0.0.1", port))
        assert [rc(d) for d in drain(other)] == [RC.SUCCESS]


# -- 2. Anonymous lock-out of an admin over REST -----------------------------------------------
async def _rest_lockout(url: str) -> tuple[int, int]:
    wrong = basic("300:88.118.8/ADMIN", "guess")
    right = basic("300:88.118.8/ADMIN", ENT_PASSWORD)
    ok = tries = 0

    async def attempt(source: str, headers: dict, n: int) -> int:
        connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            created = 0
            for i in range(n):
                body = {"values": [{"index": 1, "type": "URL", "data": {"format": "string",
                                                                     "value": "https://acme.example/"}}]}
                async with session.put(f"{url}/api/handles/88.118.8/lock-{source}-{i}-{time.monotonic_ns()}",
                                       json=body, headers=headers) as r:
                    created += r.status in (200, 201)
            return created

    for k in range(50):                                  # rotating attackers, the admin between them
        assert await attempt(f"127.0.{k}.9", wrong, 6) == 0
        ok += await attempt("127.0.200.1", right, 1)
        tries += 1
    return ok, tries


def test_wrong_passwords_from_anywhere_never_lock_out_the_admin(home):
    with serving_workers(home, 1, env={"IDNODE_AUTH_FAILURE_DELAY": "0"}) as node:
        url = node.url
        ok, tries = asyncio.run(_rest_lockout(url))
        print(f"lock-out: the admin wrote {ok} of {tries} times between 50 rotating attackers")
        assert (ok, tries) == (50, 50)
        assert asyncio.run(metric(url, "idnode_auth_failures_total", protocol="rest")) >= 50 * 5


# -- 3. The Handle challenge table ------------------------------------------------------------
def test_unanswered_challenges_cannot_fill_the_table_for_others(home):
    env = {"IDNODE_HANDLE_MAX_CHALLENGES": "64", "IDNODE_HANDLE_CHALLENGES_PER_SOURCE": "4"}
    with serving_workers(home, 1, env=env) as node:
        url, port = node.url, node.hs_port
        now = int(time.time())
        for k in range(40):                              # 40 source prefixes over UDP, 10 requests each
            s = udp_socket(f"127.0.{k}.3")
            for i in range(10):
                admin = make_request(CreateHandleRequest(f"88.118.8/x-{k}-{i}", ()), request_id=i + 1, now=now)
                read = make_request(ResolutionRequest(KNOWN), request_id=1000 + i, now=now,
                                    op_flags=OpFlag.REC | OpFlag.CA, session_id=7 + i)
                s.sendto(encode(admin), ("127.0.0.1", port))
                s.sendto(encode(read), ("127.0.0.1", port))
            codes = sorted(rc(d) for d in drain(s, 0.2))
            assert codes == [RC.ERROR] * 10 + [RC.AUTHENTICATION_NEEDED] * 10   # admin: "use TCP"; reads challenged
            s.close()

        async def over_tcp() -> None:
            for k in range(3):                           # a few TCP sources, 30 unanswered challenges each
                async with HandleClient("127.0.0.1", port, transport="tcp", local_host=f"127.0.{k}.4") as c:
                    for i in range(30):
                        request = c.request(CreateHandleRequest(f"88.118.8/y-{k}-{i}", ()))
                        (reply,) = await c.exchange(encode(request), request.request_id)
                        assert reply.response_code == RC.AUTHENTICATION_NEEDED
            async with HandleClient("127.0.0.1", port, transport="tcp", local_host="127.0.99.1") as admin:
                assert await admin.create_handle("88.118.8/still-works",
                                                 [HandleValue(1, "URL", b"https://acme.example/")], ENT)

        asyncio.run(over_tcp())
        udp = asyncio.run(metric(url, "idnode_hs_challenges_pending", pool="udp"))
        conn = asyncio.run(metric(url, "idnode_hs_challenges_pending", pool="connection"))
        print(f"challenges: {udp:.0f} pending over UDP, {conn:.0f} over TCP; the admin's write went through")
        assert udp == 64 // 4 and conn == 3 * 4                     # UDP: its quarter; TCP: 4 per source
        assert asyncio.run(metric(url, "idnode_hs_challenges_evicted_total", reason="source")) >= 3 * 26


# -- 7. A flood of unknown identifiers --------------------------------------------------------
def _flood(port: int, handles: list[str], rate: float, seconds: float, out, drain_after: bool = True) -> None:
    """Send resolutions of ``handles`` round and round at ``rate`` a second;
    report (sent, answered)."""
    requests = hs_requests(handles)
    s = udp_socket("127.0.0.2")
    s.setblocking(False)
    sent = answered = 0
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate)
        while sent < due:
            try:
                s.sendto(requests[sent % len(requests)], ("127.0.0.1", port))
            except BlockingIOError:
                pass
            sent += 1
        try:
            while True:
                s.recv(65536)
                answered += 1
        except BlockingIOError:
            time.sleep(0.0005)
    if drain_after:
        answered += len(drain(s, 0.3))
    out.put((sent, answered))


PROBE_SENDS = 3          # a lookup is sent up to three times, 0.5 s apart, as Handle.Net's UDP resolver retries


def _probe(port: int, stop, out) -> None:
    """A real user's lookups of a known identifier. A lookup succeeds when any
    of its sends is answered: under a flood at the node's maximum rate the
    kernel drops some datagrams before any server can see them, and a client
    resends, as Handle.Net's does; a node that starved its users would still
    leave whole lookups unanswered."""
    (request,) = hs_requests([KNOWN])
    s = udp_socket("127.0.1.3")
    s.settimeout(0.5)
    ok = tries = 0
    while not stop.is_set():
        tries += 1
        for _ in range(PROBE_SENDS):
            s.sendto(request, ("127.0.0.1", port))
            try:
                if rc(s.recv(65536)) == RC.SUCCESS:
                    ok += 1
                    break
            except socket.timeout:
                pass
        time.sleep(0.01)
    out.put((ok, tries))


def test_a_flood_of_unknown_identifiers_leaves_known_ones_answered(home):
    ctx = mp.get_context("fork")
    with serving_workers(home, 1) as node:
        url, port = node.url, node.hs_port
        # The node's maximum rate: what it answers (its own count) in a second of more known lookups than it can.
        labels = {"protocol": "hs-udp", "operation": "resolution", "result": "success"}
        before = asyncio.run(metric(url, "idnode_requests_total", **labels))
        out = ctx.Queue()
        _flood(port, [KNOWN], 200_000, 1.0, out, drain_after=False)
        rate = asyncio.run(metric(url, "idnode_requests_total", **labels)) - before
        out.get()
        # The flood: that rate, every request an identifier never seen, while a client probes a known one.
        stop = ctx.Event()
        probe = ctx.Process(target=_probe, args=(port, stop, out))
        probe.start()
        _flood(port, [f"88.118.8/unknown-{i}" for i in range(200_000)], rate, 5.0, out)
        stop.set()
        probe.join(30)
        flood_sent, flood_answered = out.get()
        ok, tries = out.get()
        assert tries >= 50 and ok / tries >= 0.95, (ok, tries, rate, flood_sent, flood_answered)
        shed = asyncio.run(metric(url, "idnode_requests_dropped_total", protocol="hs-udp", reason="shed"))
        assert shed > 0                                  # misses were shed, never the probes' hits
        print(f"max rate {rate:.0f}/s; flood {flood_sent} sent, {flood_answered} answered, {shed:.0f} shed; "
              f"probes {ok}/{tries}")
