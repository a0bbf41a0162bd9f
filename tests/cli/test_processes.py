"""The installed `idnode` script as real processes: serve, errors, and a SIGKILL mid-import."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import time

import orjson
import pytest

from tests.processes import DEADLINE, Lines, next_event, run, start

from .conftest import Idnode, assert_error

ROWS = 100_000
BATCH = 2000
ACK = re.compile(r"^idnode: batch (\d+) committed: lines (\d+)-(\d+), imported (\d+)")


@pytest.mark.parametrize("args,needle", [
    (["prefix", "list"], "run `idnode init` first"),
    (["serve"], "run `idnode init` first"),
    (["--config", "/nonexistent.toml", "prefix", "list"], "cannot read config file"),
    (["register", "88.118.8/x"], "give --url"),
])
def test_script_failures_are_one_line(tmp_path, args, needle):
    proc = run(*args, home=tmp_path / "home")
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("idnode: error: ") and needle in proc.stderr


def test_serve_then_resolve_over_http(node):
    node.ok("register", "88.118.8/served", "--url", "https://acme.example/served")
    # Not-found answers cached for an hour: only invalidation can show a later write.
    server = start("--log-format", "json", "serve", "--bind", "127.0.0.1", "--http-port", "0", "--hs-port", "0",
                   home=node.home, env={"IDNODE_CACHE_NEGATIVE_TTL": "3600"})
    try:
        logs = Lines(server.stderr)
        until = time.monotonic() + DEADLINE
        url = None
        while url is None:
            event = next_event(logs, until)
            url = event.get("http") if event.get("event") == "serving" else None
        assert url.startswith("http://127.0.0.1:")
        assert node.ok("resolve", "88.118.8/served", "--server", url).stdout.splitlines() == [
            "1 URL https://acme.example/served"]
        # a write made through the CLI while the node runs is answered at once
        node.ok("register", "88.118.8/while-serving", "--url", "https://acme.example/live")
        assert node.ok("resolve", "88.118.8/while-serving", "--server", url).stdout.splitlines() == [
            "1 URL https://acme.example/live"]
        doc = orjson.loads(node.ok("resolve", "88.118.8/ADMIN", "--server", url, "--json").stdout)
        assert [v["type"] for v in doc["values"]] == ["HS_ADMIN"]
        assert_error(node("resolve", "88.118.8/absent", "--server", url), "88.118.8/absent not found")
        # The node now caches "not found" (for an hour); a CLI write, from
        # another process, reaches it through the change feed.
        node.ok("register", "88.118.8/absent", "--url", "https://acme.example/late")
        written = time.monotonic()
        while node("resolve", "88.118.8/absent", "--server", url).exit_code != 0:
            assert time.monotonic() - written < DEADLINE, "the node never saw the CLI's write"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=DEADLINE) == 0
        assert any('"stopped"' in line for line in logs.rest())
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.parametrize("in_home", [True, False])
def test_serve_logs_which_settings_file_it_read(node, tmp_path, in_home):
    if in_home:     # <home>/idnode.toml asks for JSON logs: a JSON line shows it was read
        (node.home / "idnode.toml").write_text('[log]\nformat = "json"\n')
        flags, expected = [], f"settings from {node.home / 'idnode.toml'}"
    else:           # started where there is no config/idnode.toml either
        flags, expected = ["--log-format", "json"], "settings: defaults, environment and flags only"
    server = start(*flags, "serve", "--workers", "1", "--http-port", "0", "--hs-port", "0", home=node.home,
                   cwd=tmp_path)
    try:
        logs = Lines(server.stderr)
        until = time.monotonic() + DEADLINE
        events = [next_event(logs, until)]
        while events[-1].get("event") != "serving":
            events.append(next_event(logs, until))
        assert events[0]["event"] == expected, events
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=DEADLINE) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_resolve_against_a_closed_port(node):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert_error(node("resolve", "88.118.8/x", "--server", f"http://127.0.0.1:{port}"), "cannot reach")


def handle_of(line: int) -> str:
    return f"88.118.8/crash-{line}"


def url_of(line: int) -> str:
    return f"https://acme.example/item/{line}"


def test_sigkill_mid_import_keeps_every_acknowledged_batch(node: Idnode, tmp_path):
    src = tmp_path / "big.csv"
    with open(src, "w") as fh:            # line 1 is the header, so row n is on line n
        fh.write("handle,url\n")
        fh.writelines(f"{handle_of(n)},{url_of(n)}\n" for n in range(2, ROWS + 2))

    proc = start("import", src, "--progress", "lines", "--batch-size", BATCH, home=node.home)
    out = Lines(proc.stderr)
    until = time.monotonic() + DEADLINE
    acks = 0
    while acks < 2:
        line = out.next(until)
        assert line is not None, f"import ended before two batches: {out.seen}"
        acks += bool(ACK.match(line))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=DEADLINE) == -signal.SIGKILL      # killed, not finished
    acked = [tuple(map(int, m.groups())) for m in map(ACK.match, out.rest()) if m]  # all written before the kill
    assert len(acked) >= 2 and all(n == BATCH for *_, n in acked)

    with sqlite3.connect(node.settings().home / "registry.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    async def check(store):
        for _, first, last, _ in acked:
            for n in range(first, last + 1):
                record = await store.get_handle(handle_of(n))
                assert record is not None, f"acknowledged line {n} is missing"
                assert [(v.index, v.type, v.data) for v in record.values] == [(1, "URL", url_of(n).encode())]
        return await store.count_handles()
    present = node.with_store(check) - 2        # the two admin handles
    assert BATCH * len(acked) <= present < ROWS

    rerun = run("import", src, "--progress", "none", home=node.home)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == f"imported {ROWS - present}, skipped {present}, rejected 0"
    assert node.with_store(lambda store: store.count_handles()) == ROWS + 2
    last = node.ok("resolve", handle_of(ROWS + 1)).stdout
    assert last.strip() == f"1 URL {url_of(ROWS + 1)}"


def _get(url: str) -> tuple[int, bytes]:
    """One request on a new connection (so the kernel may pick either worker)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=DEADLINE) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_workers_share_ports_aggregate_metrics_and_are_restarted(node):
    node.ok("register", "88.118.8/multi", "--url", "https://acme.example/multi")
    server = start("--log-format", "json", "serve", "--workers", "2", "--http-port", "0", "--hs-port", "0",
                   home=node.home)
    try:
        logs = Lines(server.stderr)
        until = time.monotonic() + DEADLINE
        serving: dict[int, str] = {}
        while len(serving) < 2:
            event = next_event(logs, until)
            if event.get("event") == "serving":
                serving[event["pid"]] = event["http"]
        assert len(set(serving.values())) == 1            # two processes, one port
        url = next(iter(serving.values()))
        for _ in range(20):
            assert _get(f"{url}/api/handles/88.118.8/multi")[0] == 200
        # Every worker's requests, whichever answered: a worker adds its cache hits,
        # kept as plain ints, to the shared counters once a second (resolver.metrics).
        totals = []
        while not totals or totals[-1] < 20:
            assert time.monotonic() < until, f"metrics never added up to 20 requests: {totals}"
            text = _get(f"{url}/metrics")[1].decode()
            totals.append(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                              if line.startswith("idnode_requests_total{") and 'operation="get_handle"' in line))
            time.sleep(0.1)
        assert totals[-1] == 20

        victim = next(iter(serving))
        os.kill(victim, signal.SIGKILL)
        restarted = False
        while not restarted:
            event = next_event(logs, until)
            restarted = event.get("event") == "serving" and event["pid"] not in serving
        assert _get(f"{url}/api/handles/88.118.8/multi")[0] == 200

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=DEADLINE) == 0
        assert any(orjson.loads(line).get("event") == "worker died; restarting" for line in logs.rest())
        for pid in serving:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
