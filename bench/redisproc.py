"""Redis servers of our own, for the tests and the harness: a single server
and a 3-master, 3-replica cluster, each on free loopback ports in its own
directory.

Never the machine's own Redis (6379): every server here is one this module
started, so flushing it is allowed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
START_DEADLINE = 20.0          # seconds for a server or a cluster to come up (a safety net, not a timing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int
    dir: Path
    proc: subprocess.Popen | None = None
    args: tuple[str, ...] = ()
    cpus: frozenset[int] | None = None       # pinned to these (the harness: the node's core)

    def start(self) -> "Server":
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no",
             "--logfile", str(self.dir / "redis.log"), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=(lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return self
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start: "
                                       f"{(self.dir / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def flush(self) -> None:
        self.client().flushall()

    def kill(self) -> None:
        """kill -9."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@dataclass
class Cluster:
    nodes: list[Server] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.nodes[:3])

    def masters(self) -> list[Server]:
        out = []
        for s in self.nodes:
            try:
                if s.proc and s.proc.poll() is None and s.client().info("replication")["role"] == "master":
                    out.append(s)
            except redis.RedisError:
                pass
        return out

    def flush(self) -> None:
        """Empty every master, and wait for its replica to follow (one connection: WAIT counts its writes)."""
        for s in self.masters():
            c = s.client()
            c.flushall()
            c.execute_command("WAIT", 1, 2000)

    def stop(self) -> None:
        for s in self.nodes:
            s.stop()


def _replicas_online(master: Server) -> int:
    info = master.client().info("replication")
    return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online")


def start_cluster(root: Path, masters: int = 3, replicas: int = 1, cpus: frozenset[int] | None = None,
                  attempts: int = 3) -> Cluster:
    """A cluster on free ports; started again on other ports when one was
    taken between choosing it and binding it (another process's, meanwhile)."""
    for attempt in range(attempts):
        try:
            return _start_cluster(root / f"try{attempt}", masters, replicas, cpus)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _start_cluster(root: Path, masters: int, replicas: int, cpus: frozenset[int] | None) -> Cluster:
    count = masters * (1 + replicas)
    ports = _distinct_ports(2 * count)            # a port and a cluster-bus port per node, none twice
    nodes = [Server(ports[i], root / f"n{i}", cpus=cpus, args=("--cluster-enabled", "yes", "--cluster-config-file",
                                                       "nodes.conf", "--cluster-node-timeout", "2000",
                                                       "--cluster-port", str(ports[count + i]),
                                                       "--repl-diskless-sync-delay", "0"))
             for i in range(count)]
    cluster = Cluster(nodes)
    try:
        for s in nodes:
            s.start()
        subprocess.run([REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in nodes),
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=START_DEADLINE * 3)
        deadline = time.monotonic() + START_DEADLINE * 3
        while True:
            infos = [s.client().cluster("info") for s in nodes]
            if all(i.get("cluster_state") == "ok" for i in infos) and len(cluster.masters()) == masters and \
                    all(_replicas_online(s) == replicas for s in cluster.masters()):
                return cluster
            if time.monotonic() > deadline:
                raise RuntimeError(f"the test cluster did not become ready: {infos}")
            time.sleep(0.1)
    except BaseException:
        cluster.stop()
        raise



def start_store(kind: str, root: Path, cpus: frozenset[int] | None = None) -> "Server | Cluster | None":
    """The registry of a harness run: None for the embedded store, else a
    redis-server or a 3x3 cluster of our own under ``root``."""
    if kind == "sqlite":
        return None
    if kind == "redis":
        return Server(free_port(), root, cpus=cpus).start()
    if kind == "cluster":
        return start_cluster(root, cpus=cpus)
    raise ValueError(f"unknown store kind {kind!r}: sqlite, redis or cluster")
