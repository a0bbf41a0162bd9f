"""Real `idnode` processes for the tests: start one, read its lines with a deadline."""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

IDNODE = Path(sys.executable).with_name("idnode")     # the console script in .venv/bin
DEADLINE = 60.0       # a safety net against a hung child, not a readiness wait


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IDNODE_")}


def run(*args, home, input: str | None = None) -> subprocess.CompletedProcess:
    """``idnode --home HOME ARGS...`` to the end, its output captured."""
    return subprocess.run([str(IDNODE), "--home", str(home), *map(str, args)], env=clean_env(), input=input,
                          capture_output=True, text=True, timeout=DEADLINE)


def start(*args, home, env: dict[str, str] | None = None, cwd=None, preexec_fn=None) -> subprocess.Popen:
    return subprocess.Popen([str(IDNODE), "--home", str(home), *map(str, args)], env={**clean_env(), **(env or {})},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, preexec_fn=preexec_fn)


class Lines:
    """The lines a child writes to a pipe, read on a thread so a wait can have a deadline."""

    def __init__(self, pipe) -> None:
        self._q: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe) -> None:
        for line in pipe:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def next(self, until: float) -> str | None:
        """The next line; None at end of file. Fails the test past the deadline."""
        try:
            line = self._q.get(timeout=max(0.0, until - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no output from the child before the deadline; so far: {self.seen[-5:]}")
        if line is not None:
            self.seen.append(line)
        return line

    def rest(self) -> list[str]:
        until = time.monotonic() + DEADLINE
        while self.next(until) is not None:
            pass
        return self.seen


def next_event(logs: Lines, until: float) -> dict:
    """The next JSON log event of a serving child; fails the test if it exited."""
    line = logs.next(until)
    assert line is not None, f"serve exited: {logs.seen}"
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        more = []
        while len(more) < 40 and (extra := logs.next(time.monotonic() + 2)) is not None:
            more.append(extra)
        raise AssertionError("a line that is not a JSON event:\n" + "\n".join([line, *more])) from None


@dataclass
class Served:
    """A serving `idnode serve`: its URL, Handle port, worker pids and log lines."""
    url: str
    hs_port: int
    pids: list[int]
    logs: Lines

    @property
    def http_port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        """The serving process of ``--workers 1``."""
        (pid,) = self.pids
        return pid

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss(self) -> int:
        """Resident memory of the serving process, bytes."""
        with open(f"/proc/{self.pid}/status") as fh:
            line = next(line for line in fh if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def events(self, event: str) -> list[dict]:
        """The log events named ``event`` so far (all of them once the node stopped)."""
        return [e for e in map(_json, self.logs.seen) if e.get("event") == event]


def _json(line: str) -> dict:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}


@contextlib.contextmanager
def serving_workers(home, workers: int, env: dict[str, str] | None = None, *, nofile: int | None = None,
                    hs_port: int = 0):
    """``idnode serve --workers N`` on free ports, RLIMIT_NOFILE lowered to
    ``nofile`` when given; yields a :class:`Served` once every worker logged
    "serving", then stops it (SIGTERM, a clean exit, its log read to the end).
    ``hs_port``: the Handle port (0: a free one), to start a node again where it was."""
    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    server = start("--log-format", "json", "serve", "--workers", str(workers), "--http-port", "0",
                   "--hs-port", str(hs_port), home=home, env=env, preexec_fn=lower_limit if nofile else None)
    try:
        logs = Lines(server.stderr)
        until = time.monotonic() + DEADLINE
        serving: dict[int, dict] = {}
        while len(serving) < workers:
            event = next_event(logs, until)
            if event.get("event") == "serving":
                serving[event["pid"]] = event
        (url,) = {e["http"] for e in serving.values()}
        (hs_port,) = {e["hs_port"] for e in serving.values()}
        yield Served(url, hs_port, list(serving), logs)
        assert server.poll() is None, "the node died"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=DEADLINE) == 0, logs.rest()[-5:]
        logs.rest()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
