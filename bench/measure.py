"""Measuring each kind of scenario, and the ceilings they are compared with.

Every node measurement keeps what its ceiling needs (a :class:`Need`: the
same load spec, the kind of bare server, the reply shape); :func:`ceilings`
later runs one bare server per distinct (kind, reply size, shape) with that
very spec, so node and ceiling differ only in the server.
"""

from __future__ import annotations

import csv
import http.client
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from protocol.codes import RC

from . import external, procstat, report, servers, wire
from .loadgen import run_load
from .loadspec import LoadSpec
from .records import (ENTERPRISES, KeySet, cold_keys, csv_rows, handle_of, hot_keys, jsonl_lines, missing_keys,
                      new_handle, record_values, zipf_keys)
from .scenarios import Scenario
from .seed import seed_home

if TYPE_CHECKING:
    from .runner import Run

_HS_KIND = {"hs-udp": "udp", "hs-tcp": "tcp"}
_CBOR = "application/cbor"
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Need:
    """What a scenario's ceiling is built from."""
    kind: str                     # udp | tcp | http
    spec: LoadSpec
    not_found: bool = False       # HS: answer RC 100
    status: int = 200             # HTTP status of the constant reply
    content_type: str = _JSON
    generator: str = "python"     # or "wrk" (REST closed loop)
    paths: tuple[str, ...] = ()   # wrk: the paths it cycles through


def probe_handle() -> str:
    return handle_of(0)


def _keyset(r: "Run", name: str) -> KeySet:
    key = ("keys", name)
    ks = r.pools.get(key)
    if ks is None:
        n, cap = r.opts.size, r.opts.pool_cap
        ks = {"hot": lambda: hot_keys(n, r.opts.hot_keys), "cold": lambda: cold_keys(n, cap),
              "notfound": lambda: missing_keys(min(cap, 10_000)), "zipf": lambda: zipf_keys(n, cap)}[name]()
        r.pools[key] = ks
    return ks


def _pool(r: "Run", key: tuple, build) -> tuple[bytes, ...]:
    pool = r.pools.get(key)
    if pool is None:
        pool = r.pools[key] = tuple(build())
    return pool


def _spec(r: "Run", protocol: str, port: int, requests: tuple[bytes, ...], expect: tuple[int, ...],
          concurrency: int) -> LoadSpec:
    o = r.opts
    return LoadSpec(protocol, "127.0.0.1", port, requests, expect, "closed", concurrency, 0.0, o.warmup, o.duration,
                    r.procs, r.plan.load)


def _use_wrk(r: "Run") -> bool:
    return r.opts.http_generator == "wrk" or (r.opts.http_generator == "auto" and external.wrk_path() is not None)


def scenario(r: "Run", s: Scenario, node: servers.Server, cache_on: bool) -> dict:
    if s.kind == "resolve":
        return _resolve(r, s, node, cache_on)
    if s.kind == "open":
        return _open(r, s, node)
    if s.kind == "register":
        return _register(r, s, node)
    if s.kind == "mixed":
        return _mixed(r, s, node)
    raise ValueError(f"{s.name}: not a node scenario")


def _cache_label(r: "Run", cache_on: bool) -> str:
    return "absent" if r.cache_note else ("on" if cache_on else "off")


def _resolve(r: "Run", s: Scenario, node: servers.Server, cache_on: bool) -> dict:
    ks = _keyset(r, s.keys)
    o = r.opts
    host = f"127.0.0.1:{node.port}"
    items = 1
    if s.protocol in _HS_KIND:
        kind = _HS_KIND[s.protocol]
        reqs = _pool(r, ("hs", ks.name), lambda: wire.hs_requests(ks.handles))
        expect = (int(RC.SUCCESS),) if ks.found else (int(RC.HANDLE_NOT_FOUND),)
        conc = o.udp_inflight if kind == "udp" else o.tcp_connections
        need = Need(kind, _spec(r, kind, node.hs_port, reqs, expect, conc), not_found=not ks.found)
    elif s.protocol == "rest":
        reqs = _pool(r, ("rest", ks.name), lambda: wire.rest_gets(ks.handles, host))
        status = 200 if ks.found else 404
        need = Need("http", _spec(r, "http", node.port, reqs, (status,), o.http_connections), status=status)
        if _use_wrk(r):
            paths = tuple(req.split(b" ", 2)[1].decode() for req in reqs[:100_000])
            need = replace(need, generator="wrk", paths=paths)
    else:
        items = o.batch_items
        reqs = _pool(r, ("cbor", ks.name), lambda: wire.cbor_resolves(ks.handles, host, items))
        need = Need("http", _spec(r, "http", node.port, reqs, (200,), o.http_connections), content_type=_CBOR)
    entry = _measure(r, need, node)
    r.specs[s.name] = need
    return report.load_entry(s, entry, items=items, generator=need.generator, keyset=ks,
                             cache=_cache_label(r, cache_on), procs=r.procs)


def _load(r: "Run", spec: LoadSpec, pid: int):
    """``run_load``, again (up to ``retries`` times) while other processes on the
    machine took more than ``report.DISTURBED`` of a core; the least disturbed run wins."""
    best, attempts = None, 0
    while True:
        res = run_load(spec, pid)
        attempts += 1
        if best is None or res.other_busy < best.other_busy:
            best = res
        if best.other_busy <= report.DISTURBED or attempts > r.opts.retries:
            return best, attempts


def _measure(r: "Run", need: Need, server: servers.Server, *, ceiling: bool = False):
    """Run the need's load against ``server``; a ceiling server's port replaces the node's.
    Returns (result, body bytes for wrk, attempts)."""
    spec = replace(need.spec, port=server.port) if ceiling else need.spec
    if need.generator == "wrk":
        body = _sample_body_bytes(server.port, need.paths[:50])
        return external.run_wrk(f"http://127.0.0.1:{server.port}", list(need.paths),
                                connections=spec.concurrency, duration=spec.duration, warmup=spec.warmup,
                                cpus=spec.cpus, server_pid=server.pid, expect_status=spec.expect[0]), body, 1
    result, attempts = _load(r, spec, server.pid)
    return result, None, attempts


def _sample_body_bytes(port: int, paths) -> float:
    sizes = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for p in paths:
            conn.request("GET", p)
            sizes.append(len(conn.getresponse().read()))
    finally:
        conn.close()
    return sum(sizes) / len(sizes) if sizes else 0.0


def _open(r: "Run", s: Scenario, node: servers.Server) -> dict:
    twin = r.results.get(s.closed_twin, {})
    need: Need | None = r.specs.get(s.closed_twin)
    peak = twin.get("throughput_rps") or 0.0
    if need is None or peak <= 0:
        return report.failed(s, f"no closed-loop maximum from {s.closed_twin} to take fractions of")
    points = []
    for f in r.opts.open_fractions:
        spec = replace(need.spec, mode="open", rate=max(1.0, peak * f), duration=r.opts.open_duration,
                       warmup=max(0.2, r.opts.warmup / 2))
        points.append(report.point(f, *_load(r, spec, node.pid)))
    r.specs[s.name] = need
    return report.open_entry(s, peak, points, procs=r.procs)


def _register(r: "Run", s: Scenario, node: servers.Server) -> dict:
    o = r.opts
    host = f"127.0.0.1:{node.port}"
    auth = wire.basic_auth(r.home.node_admin, r.home.node_secret)
    batch = s.protocol == "cbor-batch"
    tag = f"{'B' if batch else 'S'}{int(time.time()) % 100000:05d}"
    count = max(o.register_pool, o.batch_items)
    pairs = [(new_handle(tag, j), record_values(j % max(1, o.size), o.records)) for j in range(count)]
    if batch:
        reqs = tuple(wire.cbor_registers(pairs, host, auth, o.batch_items))
        need = Need("http", _spec(r, "http", node.port, reqs, (200,), o.http_connections), content_type=_CBOR)
        items = o.batch_items
    else:
        reqs = tuple(wire.rest_puts(pairs, host, auth))
        need = Need("http", _spec(r, "http", node.port, reqs, (200, 201), o.http_connections), status=201)
        items = 1
    _prime_auth(node.port, reqs[0])
    r.specs[s.name] = need
    return report.load_entry(s, _measure(r, need, node), items=items, generator="python", keyset=None, cache="",
                             procs=r.procs)


WRITE_EVERY = 10          # mixed-two: one PUT in every ten requests


def _mixed(r: "Run", s: Scenario, node: servers.Server) -> dict:
    """Half the connections to ``node``, half to a second instance started on
    a copy of its home (the same store, the same keys), each pinned to the
    node's core; both loads run at once. The entry's figures are the sum of
    the two; each instance's own are under ``instances``."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor
    ks = _keyset(r, s.keys)
    auth = wire.basic_auth(r.home.node_admin, r.home.node_secret)
    handles = ks.handles[:max(1_000, r.opts.register_pool)]
    n = max(1, r.opts.size)

    def requests(port: int) -> tuple[bytes, ...]:
        host = f"127.0.0.1:{port}"
        out = []
        for i, h in enumerate(handles):
            if i % WRITE_EVERY == WRITE_EVERY - 1:        # writes spread over all N, reads skewed (Zipf)
                j = (i * 7919) % n
                out += wire.rest_puts([(handle_of(j), record_values(j, r.opts.records))], host, auth)
            else:
                out += wire.rest_gets([h], host)
        return tuple(out)

    b_home = r.tmp / "home-b"
    if not b_home.exists():
        shutil.copytree(r.home.path, b_home)
    env = {"IDNODE_LOG_LEVEL": "warning", "IDNODE_CACHE_ENABLED": "1"}
    if r.store_url:
        env["IDNODE_STORE"] = r.store_url
    other = servers.start_node(b_home, env=env, cpus=r.plan.server, log=r.tmp / "node-b.log", hs=False,
                               probe_handle=probe_handle())
    try:
        conc = max(1, r.opts.http_connections // 2)
        specs = [(_spec(r, "http", srv.port, requests(srv.port), (200, 201), conc), srv) for srv in (node, other)]
        for spec, _ in specs:
            _prime_auth(spec.port, next(q for q in spec.requests if q.startswith(b"PUT")))
        with ThreadPoolExecutor(2) as pool:
            runs = [f.result() for f in [pool.submit(_load, r, spec, srv.pid) for spec, srv in specs]]
    finally:
        other.stop()
    each = [report.load_entry(s, (res, None, attempts), items=1, generator="python", keyset=ks, cache="on",
                              procs=r.procs) for res, attempts in runs]
    return report.combined_entry(s, each, write_share=1 / WRITE_EVERY)


def _prime_auth(port: int, request: bytes) -> None:
    """Send one write before the load so the node has checked the credentials
    once (scrypt) and remembers them, as a long-lived client's node would;
    otherwise every connection's first request pays scrypt inside the window."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        s.settimeout(30)
        head = s.recv(65536)
    if not head.startswith(b"HTTP/1.1 20"):
        raise RuntimeError(f"the node refused a registration: {head[:200]!r}")


# ------------------------------------------------------------------ import

def import_rows(r: "Run", s: Scenario) -> dict:
    """``idnode import`` of N rows into a fresh home, pinned to the server core: CSV
    for large records, JSONL (Handle.Net JSON values) for small and mixed ones,
    whose HS_ADMIN values a CSV column cannot carry."""
    n = r.opts.size
    home = r.tmp / "import-home"
    store = r.import_store_url()                 # an empty registry of the run's kind
    seed_home(home, 0, store=store)
    if r.opts.records == "large":
        path = r.tmp / "import.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(csv_rows(n))
        row_bytes = max(1, (path.stat().st_size // max(1, n)))
    else:
        path = r.tmp / "import.jsonl"
        stored = 0
        with open(path, "wb") as fh:
            for i, line in enumerate(jsonl_lines(n, r.opts.records)):
                fh.write(line)
                stored += len(handle_of(i)) + sum(len(v.data) + 1 for v in record_values(i, r.opts.records))
        # The sqlite ceiling's rows: what a CSV line of these values would hold, not the JSON's bytes.
        row_bytes = max(1, stored // max(1, n))
    cmd = servers.idnode_command("--home", str(home), *(("--store", store) if store else ()), "import", str(path),
                                 "--progress", "none")
    env = servers.node_env({"IDNODE_LOG_LEVEL": "warning"})
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=(lambda: procstat.pin(r.plan.server)) if r.plan.pinned else None)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read().decode(errors="replace")
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"idnode import exited {proc.returncode}: {err.strip()[-300:]}")
    startup = _startup_seconds(env)
    ceiling = _sqlite_ceiling(r, n, row_bytes) if not store else None   # Redis: its SET ceiling, in the table
    entry = report.import_entry(s, rows=n, seconds=seconds, startup=startup, cpu=usage.ru_utime + usage.ru_stime,
                                max_rss=usage.ru_maxrss * 1024, summary=out.strip(), row_bytes=row_bytes,
                                prefixes=len(ENTERPRISES))
    if r.opts.records != "large":
        entry["file_format"] = "jsonl"
    entry["store"] = r.opts.store
    if ceiling is not None:
        report.attach_ceiling(entry, ceiling)
    return entry


def _startup_seconds(env) -> float:
    """What `idnode --help` costs: the part of the import's wall time that is not importing."""
    t0 = time.perf_counter()
    subprocess.run(servers.idnode_command("--help"), env=env, capture_output=True, check=False)
    return time.perf_counter() - t0


def _sqlite_ceiling(r: "Run", rows: int, row_bytes: int) -> dict:
    path = r.tmp / "ceiling.sqlite3"
    cmd = [sys.executable, "-m", "bench.ceilings", "sqlite", "--size", str(row_bytes), "--rows", str(rows),
           "--batch", "2000", "--path", str(path)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600,
                         preexec_fn=(lambda: procstat.pin(r.plan.server)) if r.plan.pinned else None).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = float(out.split()[-1])
    entry = {"name": "bare sqlite3 inserts", "kind": "sqlite", "throughput_rps": round(rate, 1),
             "row_bytes": row_bytes, "batch": 2000,
             "cpu_seconds": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 3),
             "note": "executemany of the same number of rows of the same size, WAL + synchronous=FULL"}
    r.ceilings.append(entry)
    return entry


# ------------------------------------------------------------------ ceilings

_NAMES = {"udp": "bare uvloop UDP responder", "tcp": "bare uvloop TCP responder", "http": "bare aiohttp app"}


def _key(need: Need, mean_bytes: float) -> tuple:
    step = 16 if need.kind in ("udp", "tcp") else 32
    size = max(step, int(round(mean_bytes / step)) * step)
    return (need.kind, size, need.not_found, need.status, need.content_type, need.generator)


def ceilings(r: "Run") -> None:
    """One bare server per distinct reply shape; each scenario gets its ratio."""
    wanted: dict[tuple, list[str]] = {}
    for name, need in r.specs.items():
        entry = r.results.get(name, {})
        mean = entry.get("ceiling_reply_bytes") or r.results.get(name.removesuffix("-open"), {}).get(
            "ceiling_reply_bytes") or 0
        if not mean:
            continue
        wanted.setdefault(_key(need, mean), []).append(name)
    for key, names in wanted.items():
        kind, size, not_found, status, ctype, generator = key
        closed = [n for n in names if r.results[n].get("kind") != "open"]
        opened = [n for n in names if r.results[n].get("kind") == "open"]
        need: Need = r.specs[(closed or opened)[0]]
        t0 = time.perf_counter()
        try:
            server = servers.start_ceiling(kind, size=size, cpus=r.plan.server, not_found=not_found,
                                           status=status, content_type=ctype, records=r.opts.records)
        except servers.ServerError as exc:
            r.say(f"ceiling {kind} {size} B: failed ({exc})")
            continue
        try:
            measured = _measure(r, need, server, ceiling=True)
            ceiling = report.ceiling_entry(_NAMES[kind], kind, size, measured, generator,
                                           content_type=ctype if kind == "http" else "",
                                           shape="not found" if not_found else f"status {status}" if kind == "http"
                                           else "values" if r.opts.records == "large"
                                           else f"{r.opts.records} records")
            if opened and r.opts.open_ceilings:
                ceiling["open_points"] = _ceiling_points(r, server, r.results[opened[0]], need)
        except (OSError, RuntimeError, ValueError) as exc:
            r.say(f"ceiling {kind} {size} B: failed ({type(exc).__name__}: {exc})")
            continue
        finally:
            server.stop()
        ceiling["for"] = names
        r.ceilings.append(ceiling)
        for n in names:
            report.attach_ceiling(r.results[n], ceiling)
        r.say(f"ceiling {ceiling['name']} ({size} B replies): {report.one_line(ceiling)} "
              f"[{time.perf_counter() - t0:.1f} s]")


def _ceiling_points(r: "Run", server: servers.Server, open_entry: dict, need: Need) -> list[dict]:
    """The ceiling under the same offered rates as the node's open-loop run."""
    points = []
    for p in open_entry.get("points", []):
        spec = replace(need.spec, port=server.port, mode="open", rate=p["offered_rps"],
                       duration=r.opts.open_duration, warmup=max(0.2, r.opts.warmup / 2))
        points.append(report.point(p["fraction"], *_load(r, spec, server.pid)))
    return points


def redis(r: "Run", test: str = "get") -> dict:
    """redis-benchmark GET (or SET) of a value the size of an HS-TCP hot reply (or 600 bytes)."""
    size = next((e.get("ceiling_reply_bytes") for n, e in r.results.items()
                 if n in ("hs-tcp-hot", "hs-udp-hot") and e.get("ceiling_reply_bytes")), None) or 600
    res = external.run_redis(value_bytes=int(size), requests=r.opts.redis_requests, clients=r.opts.tcp_connections,
                             server_cpus=r.plan.server, load_cpus=r.plan.load, test=test)
    entry = report.redis_entry(res)
    r.say(f"ceiling {entry['name']}: {report.one_line(entry)}")
    return entry
