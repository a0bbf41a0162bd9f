"""Tools outside Python, used when installed: ``wrk`` for REST load and
``redis-server`` + ``redis-benchmark`` for a C server's ceiling.

Nothing here installs anything. ``wrk`` comes from the distribution
(``apt-get install wrk``, ``brew install wrk``); the Python generator is used
without it. The harness starts its own redis-server on a free port with no
persistence and stops it; it never touches a Redis someone else runs.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import procstat
from .servers import ServerError, free_port
from .stats import Latency

WRK_HINT = "wrk is not installed; the Python generator drives REST (install it with `apt-get install wrk`)"
_LUA = """
local paths = {}
for line in io.lines(%s) do paths[#paths + 1] = line end
local n = #paths
local i = 0
request = function()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, ' ..
    '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "mean": %%f, "p50": %%f, "p90": %%f, ' ..
    '"p99": %%f, "p999": %%f, "max": %%f}\\n', summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, latency.mean, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    reply_bytes: int
    errors: int
    latency: Latency
    server_cpu: float
    server_rss: int


def _pinned(cpus):
    return (lambda: procstat.pin(cpus)) if cpus else None


def run_wrk(url: str, paths: list[str], *, connections: int, duration: float, warmup: float,
            cpus: frozenset[int], server_pid: int, expect_status: int = 200) -> WrkResult:
    """Closed-loop GETs cycling through ``paths``; one warm-up run, then the measured one."""
    wrk = wrk_path()
    if wrk is None:
        raise FileNotFoundError(WRK_HINT)
    host = urlsplit(url)
    with tempfile.TemporaryDirectory(prefix="idnode-wrk-") as tmp:
        listing = Path(tmp) / "paths.txt"          # read by the script: no limit on Lua constants
        listing.write_text("\n".join(paths[:100_000]) + "\n")
        script = Path(tmp) / "paths.lua"
        script.write_text(_LUA % json.dumps(str(listing)))
        threads = max(1, min(len(cpus) or 1, connections))

        def once(seconds: float) -> str:
            cmd = [wrk, f"-t{threads}", f"-c{max(threads, connections)}", f"-d{max(1, round(seconds))}s",
                   "-s", str(script), f"{host.scheme}://{host.netloc}"]
            return subprocess.run(cmd, capture_output=True, text=True, check=True, preexec_fn=_pinned(cpus),
                                  timeout=seconds + 60).stdout
        if warmup > 0:
            once(warmup)
        cpu0 = procstat.cpu_seconds(server_pid)
        out = once(duration)
        cpu1 = procstat.cpu_seconds(server_pid)
        rss = procstat.rss_bytes(server_pid)
    line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise ValueError(f"wrk printed no summary: {out[-300:]}")
    doc = json.loads(line.removeprefix("WRKJSON "))
    seconds = doc["duration_us"] / 1e6
    errors = doc["connect"] + doc["read"] + doc["write"] + doc["timeout"]
    if expect_status < 400:
        errors += doc["status"]
    us = {k: float(doc[k]) for k in ("mean", "p50", "p90", "p99", "p999", "max")}
    lat = Latency(doc["requests"], us["mean"], us["p50"], us["p90"], us["p99"], us["p999"], us["max"],
                  ((0.5, us["p50"]), (0.9, us["p90"]), (0.99, us["p99"]), (0.999, us["p999"]), (1.0, us["max"])))
    return WrkResult(doc["requests"], seconds, doc["bytes"], errors, lat, cpu1 - cpu0, rss)


# ------------------------------------------------------------------ redis

@dataclass(frozen=True, slots=True)
class RedisResult:
    rps: float
    p50_us: float | None
    p99_us: float | None
    value_bytes: int
    clients: int
    server_busy: float
    version: str
    test: str = "GET"


def redis_available() -> bool:
    return bool(shutil.which("redis-server") and shutil.which("redis-benchmark"))


def _redis_ping(port: int, deadline: float, proc: subprocess.Popen) -> None:
    while True:
        if proc.poll() is not None:
            raise ServerError(f"redis-server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError("redis-server did not answer PING")
        time.sleep(0.02)


def run_redis(*, value_bytes: int, requests: int, clients: int, server_cpus: frozenset[int],
              load_cpus: frozenset[int], test: str = "get") -> RedisResult:
    """GETs (or SETs) of one ``value_bytes`` value from a redis-server of our own on a free port."""
    server, bench = shutil.which("redis-server"), shutil.which("redis-benchmark")
    if not (server and bench):
        raise FileNotFoundError("redis-server / redis-benchmark are not installed")
    version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout.strip()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="idnode-redis-") as tmp:
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", tmp, "--protected-mode", "yes"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=_pinned(server_cpus))
        try:
            _redis_ping(port, time.monotonic() + 30, proc)
            base = [bench, "-h", "127.0.0.1", "-p", str(port), "-d", str(value_bytes), "-c", str(clients), "--csv"]
            subprocess.run(base + ["-t", "set", "-n", "1000"], capture_output=True, check=True,
                           preexec_fn=_pinned(load_cpus), timeout=120)
            cpu0, t0 = procstat.cpu_seconds(proc.pid), time.monotonic()
            out = subprocess.run(base + ["-t", test, "-n", str(requests)], capture_output=True, text=True,
                                 check=True, preexec_fn=_pinned(load_cpus), timeout=600).stdout
            busy = (procstat.cpu_seconds(proc.pid) - cpu0) / max(1e-9, time.monotonic() - t0)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return _parse_redis_csv(out, value_bytes, clients, busy, version, test)


def _parse_redis_csv(out: str, value_bytes: int, clients: int, busy: float, version: str,
                     test: str = "get") -> RedisResult:
    """Both CSV shapes: ``"GET","123.45"`` and the newer one with a header and latency columns."""
    header: list[str] = []
    for line in out.splitlines():
        cells = [c.strip().strip('"') for c in line.split(",")]
        if cells and cells[0] == "test":
            header = cells
            continue
        if cells and cells[0].upper().startswith(test.upper()):
            row = dict(zip(header, cells)) if header else {"rps": cells[1]}

            def ms(key: str) -> float | None:
                return float(row[key]) * 1000 if key in row else None
            return RedisResult(float(row["rps"]), ms("p50_latency_ms"), ms("p99_latency_ms"), value_bytes,
                               clients, busy, version, test.upper())
    raise ValueError(f"redis-benchmark printed no {test.upper()} line: {out[-300:]}")
