"""The processes under test: the node (``idnode serve``) and the ceiling servers.

Both are started pinned to the server core and are ready when they say so:
the node when ``GET /readyz`` answers 200 (and, with HS ports, when a UDP
resolution gets an answer), a ceiling server when it prints ``ready PORT``.
Nothing here sleeps for readiness; the short pauses between polls are only
there so polling does not take the core from the process starting up.
"""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import procstat, wire

READY_TIMEOUT = 60.0
HS_READY_TIMEOUT = 10.0         # the HTTP side is up by then: HS ports answer at once or not at all
_IDNODE = "import sys; from resolver.cli import main; sys.argv[0] = 'idnode'; main()"


class ServerError(RuntimeError):
    """A server did not start or died."""


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    hs_port: int | None = None
    log: Path | None = None
    note: str = ""                 # why the HS ports are not in use, when asked for and not answering

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def log_tail(self, lines: int = 5) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port(*, udp_too: bool = False) -> int:
    """A port free for TCP (and UDP) on 127.0.0.1 right now."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise ServerError("no free port on 127.0.0.1")


def node_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a node: none of the caller's IDNODE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDNODE_")}
    env.update(extra)
    return env


def idnode_command(*args: str) -> list[str]:
    return [sys.executable, "-c", _IDNODE, *args]


def _pinned(cpus: frozenset[int]):
    return (lambda: procstat.pin(cpus)) if cpus else None


def start_node(home: Path, *, env: dict[str, str], cpus: frozenset[int], log: Path,
               hs: bool, probe_handle: str, extra: list[str] | tuple[str, ...] = ()) -> Server:
    """``idnode serve`` on free ports, pinned to ``cpus``; returns once ready.
    With ``hs``, a node whose HS ports do not answer is returned without
    them (``hs_port`` None, ``note`` saying why) rather than refused."""
    http_port = free_port()
    hs_port = free_port(udp_too=True) if hs else None
    args = ["--home", str(home), "--log-format", "json", "serve", "--http-port", str(http_port), *extra]
    if hs_port:
        args += ["--hs-port", str(hs_port)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(idnode_command(*args), env=node_env(env), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, preexec_fn=_pinned(cpus))
    server = Server("node", proc, http_port, hs_port, log)
    try:
        _wait_http(server)
        if hs_port:
            try:
                _wait_hs(server, probe_handle)
            except ServerError as exc:
                if proc.poll() is not None:
                    raise
                return Server("node", proc, http_port, None, log, str(exc))
    except BaseException:
        server.stop()
        raise
    return server


def _wait_http(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if server.proc.poll() is not None:
            raise ServerError(f"the node exited with status {server.proc.returncode}:\n{server.log_tail()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerError(f"the node was not ready within {READY_TIMEOUT:.0f} s:\n{server.log_tail()}")
        time.sleep(0.02)


def _wait_hs(server: Server, handle: str) -> None:
    """Ask the HS UDP port until it answers, and check the TCP port accepts."""
    request = wire.hs_requests([handle])[0]
    deadline = time.monotonic() + HS_READY_TIMEOUT
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.connect(("127.0.0.1", server.hs_port))
        u.settimeout(0.1)
        while True:
            if server.proc.poll() is not None:
                raise ServerError(f"the node exited with status {server.proc.returncode}:\n{server.log_tail()}")
            try:
                u.send(request)
                u.recv(65536)
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError("the node's HS UDP port did not answer")
    try:
        socket.create_connection(("127.0.0.1", server.hs_port), timeout=HS_READY_TIMEOUT).close()
    except OSError as exc:
        raise ServerError(f"the node's HS TCP port refused a connection: {exc}") from None


def start_ceiling(kind: str, *, size: int, cpus: frozenset[int], not_found: bool = False, status: int = 200,
                  content_type: str = "application/json", records: str = "large") -> Server:
    """A ceiling server (see :mod:`bench.ceilings`), ready to be loaded; ``records``
    (small, mixed) shapes the HS replies like the node's for those records."""
    cmd = [sys.executable, "-m", "bench.ceilings", kind, "--size", str(size), "--status", str(status),
           "--content-type", content_type] + (["--not-found"] if not_found else [])
    if records != "large" and kind in ("udp", "tcp"):
        cmd += ["--records", records]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_pinned(cpus), cwd=str(Path(__file__).resolve().parent.parent))
    server = Server(f"ceiling-{kind}", proc, 0)
    deadline = time.monotonic() + READY_TIMEOUT
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-800:] if proc.poll() is not None else ""
            server.stop()
            raise ServerError(f"ceiling server {kind} did not start: {err}")
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                continue
            line += chunk
    word, _, port = line.decode().strip().partition(" ")
    if word != "ready" or not port.isdigit():
        server.stop()
        raise ServerError(f"ceiling server {kind} said {line!r}")
    return Server(server.name, proc, int(port))
