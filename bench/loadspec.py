"""What a load generator is asked to do and what it reports (picklable values)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One load run. ``requests`` are complete wire messages, cycled through;
    ``expect`` holds the Handle response codes (udp, tcp) or HTTP statuses
    (http) a reply may carry; any other counts as an error. ``concurrency`` is the total in flight (udp) or
    connections (tcp, http) over all generator processes; ``rate`` the total
    offered requests per second in open loop."""
    protocol: str                      # "udp" | "tcp" | "http"
    host: str
    port: int
    requests: tuple[bytes, ...]
    expect: tuple[int, ...]
    mode: str = "closed"               # "closed" | "open"
    concurrency: int = 64
    rate: float = 0.0
    warmup: float = 1.0
    duration: float = 5.0
    procs: int = 1
    cpus: frozenset[int] = field(default_factory=frozenset)
    timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class ProcResult:
    """One generator process's count of the measurement window."""
    done: int                          # replies to requests of the window
    bad: int                           # replies with another code than expected
    timeouts: int                      # requests never answered (lost, or still queued at the end)
    conn_errors: int                   # refused or reset connections, closes before a reply
    stray: int                         # replies to nothing outstanding (late after a timeout)
    reply_bytes: int                   # bytes of the replies counted in ``done``
    sent: int                          # requests of the window (open loop: intended sends)
    latencies: bytes                   # array('q') of nanoseconds
    cpu_seconds: float                 # the generator's own CPU time in the window
    reconnects: int


@dataclass(frozen=True, slots=True)
class LoadResult:
    """All generator processes of one run, merged; ``server_*`` measured by the parent."""
    spec: LoadSpec
    done: int
    bad: int
    timeouts: int
    conn_errors: int
    stray: int
    reply_bytes: int
    sent: int
    latencies: tuple[bytes, ...]
    generator_cpu: float
    reconnects: int
    server_cpu: float = 0.0
    server_rss: int = 0
    other_cpu: float = 0.0             # CPU seconds other processes on the machine used in the window

    @property
    def throughput(self) -> float:
        return self.done / self.spec.duration if self.spec.duration else 0.0

    @property
    def errors(self) -> int:
        return self.bad + self.timeouts + self.conn_errors

    @property
    def mean_reply_bytes(self) -> float:
        return self.reply_bytes / self.done if self.done else 0.0

    @property
    def server_busy(self) -> float:
        """Fraction of one core the server used during the window."""
        return self.server_cpu / self.spec.duration if self.spec.duration else 0.0

    @property
    def generator_busy(self) -> float:
        """Fraction of the generator cores used (1.0 = every generator process saturated)."""
        return self.generator_cpu / (self.spec.duration * max(1, self.spec.procs)) if self.spec.duration else 0.0

    @property
    def other_busy(self) -> float:
        """Cores' worth of CPU other processes took during the window (0.0 on a quiet machine)."""
        return self.other_cpu / self.spec.duration if self.spec.duration else 0.0

    @property
    def achieved_rate(self) -> float:
        """Open loop: requests per second actually due in the window."""
        return self.sent / self.spec.duration if self.spec.duration else 0.0


def merge(spec: LoadSpec, parts: list[ProcResult], server_cpu: float, server_rss: int,
          system_cpu: float, parent_cpu: float) -> LoadResult:
    """Sum the processes' counts; what the machine did beyond server,
    generators and parent is the other processes' share."""
    generators = sum(p.cpu_seconds for p in parts)
    other = max(0.0, system_cpu - server_cpu - generators - parent_cpu) if system_cpu else 0.0
    return LoadResult(spec, sum(p.done for p in parts), sum(p.bad for p in parts), sum(p.timeouts for p in parts),
                      sum(p.conn_errors for p in parts), sum(p.stray for p in parts),
                      sum(p.reply_bytes for p in parts), sum(p.sent for p in parts),
                      tuple(p.latencies for p in parts), generators,
                      sum(p.reconnects for p in parts), server_cpu, server_rss, other)
