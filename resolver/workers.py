"""``idnode serve --workers N``: N processes sharing the node's ports.

Each worker is a whole node (store, cache, HTTP and Handle servers) bound
with SO_REUSEPORT, so the kernel spreads connections and datagrams over
them. The supervisor (this module) starts them, restarts one that dies,
forwards SIGTERM/SIGINT so every worker drains, and gives them one run
directory (mode 0700) holding

* the Prometheus multiprocess files, so ``/metrics`` from any worker reports
  all of them;
* the node's shared memory (:mod:`resolver.shared`): the write stamps that
  keep every worker's cache behind no acknowledged write, and the one
  failed-login table behind the lock-out.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.connection import wait

from . import logs
from .hs.site import hs_bind
from .settings import Settings
from .shared import SharedState, shared_path

log = logging.getLogger("idnode.workers")

RESTART_WINDOW = 30.0      # seconds
MAX_RESTARTS = 10          # per window, then the supervisor gives up
DRAIN_TIMEOUT = 15.0       # seconds a worker has to drain after SIGTERM


def worker_count(settings: Settings) -> int:
    return settings.node.workers or os.cpu_count() or 1


PORT_ATTEMPTS = 50


def _free_port(host: str, *, udp_too: bool) -> int:
    """A port free on ``host`` for TCP (and, with ``udp_too``, for UDP as well:
    the Handle protocol listens on one number for both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(PORT_ATTEMPTS):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError(f"no port free for both TCP and UDP on {host}")


def fixed_ports(settings: Settings) -> Settings:
    """Workers must agree on ports: turn port 0 into one free port for all."""
    changes = {}
    if settings.http.port == 0:
        changes["http.port"] = _free_port(settings.http.bind, udp_too=False)
    if settings.handle.port == 0:
        changes["handle.port"] = _free_port(hs_bind(settings), udp_too=True)
    return settings.with_overrides(changes) if changes else settings


def _memory_dir() -> str | None:
    """Where the run directory goes: memory-backed /dev/shm when there is one
    (the shared table and the metrics files are never written back to disk)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _worker_main(settings: Settings, metrics_dir: str, shared_path: str) -> None:
    from .server import run        # imported here: after PROMETHEUS_MULTIPROC_DIR is set
    run(settings, reuse_port=True, metrics_dir=metrics_dir, shared_path=shared_path)


class Supervisor:
    def __init__(self, settings: Settings, count: int):
        self.settings = fixed_ports(settings)
        self.count = count
        self._ctx = mp.get_context("spawn")
        self._workers: dict[int, mp.process.BaseProcess] = {}
        self._stopping = False
        self._restarts: list[float] = []
        self._metrics_dir = ""
        self._shared_path = ""

    def _start(self, index: int) -> None:
        proc = self._ctx.Process(target=_worker_main, args=(self.settings, self._metrics_dir, self._shared_path),
                                 name=f"idnode-worker-{index}")
        proc.start()
        self._workers[index] = proc
        log.info("worker started", extra={"worker": index, "pid": proc.pid})

    def _stop(self, *_args) -> None:
        self._stopping = True

    def run(self) -> int:
        run_dir = tempfile.mkdtemp(prefix="idnode-run-", dir=_memory_dir())     # mode 0700
        metrics_dir = self._metrics_dir = os.path.join(run_dir, "metrics")
        os.mkdir(metrics_dir)
        self._shared_path = str(shared_path(run_dir))
        SharedState.create(self._shared_path).close()
        # prometheus_client reads this at import time in each spawned worker.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        old = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for i in range(self.count):
                self._start(i)
            return self._watch()
        finally:
            self._shutdown()
            for sig, handler in old.items():
                signal.signal(sig, handler)
            shutil.rmtree(run_dir, ignore_errors=True)

    def _watch(self) -> int:
        from prometheus_client import multiprocess
        while not self._stopping:
            sentinels = {p.sentinel: i for i, p in self._workers.items()}
            for ready in wait(list(sentinels), timeout=0.5):
                index = sentinels[ready]
                proc = self._workers[index]
                proc.join()
                multiprocess.mark_process_dead(proc.pid, self._metrics_dir)
                if self._stopping:
                    break
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW] + [now]
                log.warning("worker died; restarting", extra={"worker": index, "pid": proc.pid,
                                                              "exitcode": proc.exitcode})
                if len(self._restarts) > MAX_RESTARTS:
                    log.error("workers keep dying; giving up")
                    return 1
                self._start(index)
        return 0

    def _shutdown(self) -> None:
        for proc in self._workers.values():
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        for proc in self._workers.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        log.info("stopped")


def serve(settings: Settings) -> int:
    """Serve with ``node.workers`` processes (0: one per CPU); returns the exit status."""
    count = worker_count(settings)
    if count == 1:
        from .server import run
        run(settings)
        return 0
    logs.configure(settings.log.format, settings.log.level)
    return Supervisor(dataclasses.replace(settings), count).run()
