"""Run a load in separate generator processes, pinned to the load cores.

The parent forks the processes (the request pools are shared copy-on-write
instead of pickled; the harness runs no threads of its own), waits until each has built its requests
and opened its sockets, then gives them one common start time (the
monotonic clock is shared by every process). While they run, the parent
reads the server's CPU time at the start and end of the measurement window
and its RSS at the end: that is where CPU seconds per 1,000 requests and the
server's busy fraction come from. It also reads the whole machine's CPU
time, so a run disturbed by other processes (a test suite, a build) can be
told from a quiet one and measured again.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback

from . import gen_dgram, gen_stream, procstat
from .loadspec import LoadResult, LoadSpec, ProcResult, merge

_READY_TIMEOUT = 120.0


class LoadError(RuntimeError):
    """A generator process failed (could not connect, crashed)."""


def _shares(total: int, parts: int) -> list[int]:
    base, extra = divmod(max(total, parts), parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def _child(spec: LoadSpec, k: int, share: int, ready: mp.Queue, results: mp.Queue, go, start) -> None:
    try:
        if spec.cpus:
            procstat.pin(spec.cpus)
        offset = k * len(spec.requests) // max(1, spec.procs)
        ready.put(("ready", k))
        go.wait()
        t0 = start.value
        cpu = procstat.self_cpu_seconds
        if spec.protocol == "udp":
            if spec.mode == "open":
                out = gen_dgram.open_loop(spec, spec.rate / spec.procs, offset, t0, cpu)
            else:
                out = gen_dgram.closed(spec, share, offset, t0, cpu)
        elif spec.mode == "open":
            out = gen_stream.open_loop(spec, spec.rate / spec.procs, share, offset, t0, cpu)
        else:
            out = gen_stream.closed(spec, share, offset, t0, cpu)
        results.put(("ok", k, out))
    except BaseException as exc:             # noqa: BLE001 - reported to the parent, which raises
        results.put(("error", k, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))


def run_load(spec: LoadSpec, server_pid: int | None = None) -> LoadResult:
    """Run ``spec`` and return the merged result (raises LoadError)."""
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    go, start = ctx.Event(), ctx.Value("q", 0)
    shares = _shares(spec.concurrency, spec.procs)
    procs = [ctx.Process(target=_child, args=(spec, k, shares[k], ready, results, go, start), daemon=True)
             for k in range(spec.procs)]
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + _READY_TIMEOUT
        waiting = spec.procs
        while waiting:
            try:
                ready.get(timeout=0.5)
                waiting -= 1
            except queue.Empty:
                _check_alive(procs, results)
                if time.monotonic() > deadline:
                    raise LoadError("generator processes did not get ready")
        t0 = time.monotonic_ns() + 100_000_000
        start.value = t0
        go.set()
        t_meas = t0 + int(spec.warmup * 1e9)
        t_end = t_meas + int(spec.duration * 1e9)
        before = after = (0.0, 0.0, 0.0)
        rss = 0
        if server_pid:
            _sleep_until(t_meas)
            before = _cpu_sample(server_pid)
            _sleep_until(t_end)
            after = _cpu_sample(server_pid)
            rss = procstat.rss_bytes(server_pid)
        parts: list[ProcResult] = []
        deadline = time.monotonic() + spec.warmup + spec.duration + spec.timeout + 60
        while len(parts) < spec.procs:
            try:
                kind, k, payload = results.get(timeout=0.5)
            except queue.Empty:
                _check_alive(procs, results)
                if time.monotonic() > deadline:
                    raise LoadError("generator processes did not finish") from None
                continue
            if kind != "ok":
                raise LoadError(f"generator {k} failed: {payload}")
            parts.append(payload)
        server_cpu, system_cpu, parent_cpu = (b - a for a, b in zip(before, after))
        return merge(spec, parts, server_cpu, rss, system_cpu, parent_cpu)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()


def _check_alive(procs, results) -> None:
    for p in procs:
        if p.exitcode not in (None, 0):
            try:
                kind, k, payload = results.get_nowait()
                if kind == "error":
                    raise LoadError(f"generator {k} failed: {payload}")
            except queue.Empty:
                pass
            raise LoadError(f"generator process {p.pid} exited with status {p.exitcode}")


def _cpu_sample(server_pid: int) -> tuple[float, float, float]:
    """CPU seconds so far: the server's, the whole machine's, this process's."""
    return procstat.cpu_seconds(server_pid), procstat.system_busy_seconds(), procstat.self_cpu_seconds()


def _sleep_until(t_ns: int) -> None:
    left = (t_ns - time.monotonic_ns()) / 1e9
    if left > 0:
        time.sleep(left)


def load_cpu_count(cpus: frozenset[int]) -> int:
    """One generator process per load core (more would only share it)."""
    return max(1, len(cpus) if cpus else (os.cpu_count() or 1))
