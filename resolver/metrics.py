"""Prometheus metrics on a registry of the node's own (never the global one).

Labelled children are created once here; handlers hold the children, so the
request path never calls ``.labels()``. The commonest counts (answers from
the cache) are kept as plain integers, :class:`Tally`, and added to their
counters by :meth:`Metrics.flush`: at every scrape, and once a second in
every worker (``serve --workers N`` keeps counters in shared files, whose
every increment takes a lock and writes a page). Sizes (registry, cache) are
read at scrape time by :meth:`Metrics.render`. Each resolution stage registers its
own metrics on :attr:`Metrics.registry` (see its README).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

from protocol.codes import RC

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Tally:
    """Increments of one counter child kept as a plain int (``tally.n += 1``)
    until :meth:`flush` adds them to the child."""
    __slots__ = ("n", "_child")

    def __init__(self, child) -> None:
        self.n = 0
        self._child = child

    def flush(self) -> None:
        n = self.n
        if n:
            self.n = 0
            self._child.inc(n)


class RequestMetrics:
    """Children of the request counter and histogram for one protocol+operation."""
    __slots__ = ("_counter", "_labels", "_results", "_tallies", "duration")

    def __init__(self, counter: Counter, histogram: Histogram, protocol: str, operation: str):
        self._counter = counter
        self._labels = (protocol, operation)
        self._results: dict[int, object] = {}
        self._tallies: dict[int, Tally] = {}
        self.duration = histogram.labels(protocol, operation)
        for rc in (RC.SUCCESS, RC.HANDLE_NOT_FOUND, RC.INVALID_HANDLE, RC.ERROR):
            self.result(rc)

    def result(self, code: int):
        child = self._results.get(code)
        if child is None:
            try:
                name = RC(code).name.lower()
            except ValueError:
                name = f"rc_{code}"
            child = self._results[code] = self._counter.labels(*self._labels, name)
        return child

    def observe(self, code: int, seconds: float) -> None:
        self.count(code)
        self.duration.observe(seconds)

    def count(self, code: int) -> None:
        """One answer with ``code``, untimed (the hot paths): a plain int until flushed."""
        tally = self._tallies.get(code)
        if tally is None:
            tally = self._tallies[code] = Tally(self.result(code))
        tally.n += 1

    def flush(self) -> None:
        for tally in self._tallies.values():
            tally.flush()


class Metrics:
    """The node's metrics. With ``multiprocess_dir`` (``serve --workers N``) the
    values live in prometheus_client's shared files and :meth:`render`
    reports every worker; gauges say how workers combine."""

    def __init__(self, version: str, registry: CollectorRegistry | None = None,
                 multiprocess_dir: str | None = None):
        self.registry = registry or CollectorRegistry()
        self._multiprocess_dir = multiprocess_dir
        self._requests = Counter("idnode_requests_total", "Requests answered, by protocol, operation and result.",
                                 ("protocol", "operation", "result"), registry=self.registry)
        self._duration = Histogram("idnode_request_duration_seconds", "Time to answer a request.",
                                   ("protocol", "operation"), buckets=BUCKETS, registry=self.registry)
        self.identifiers = Gauge("idnode_registry_identifiers", "Identifiers in the registry (read at scrape time).",
                                 registry=self.registry, multiprocess_mode="mostrecent")
        self.prefixes = Gauge("idnode_registry_prefixes", "Enterprise prefixes allocated (read at scrape time).",
                              registry=self.registry, multiprocess_mode="mostrecent")
        self.auth_failures = Counter("idnode_auth_failures_total", "Failed authentications, by protocol.",
                                     ("protocol",), registry=self.registry)
        self._auth_children: dict[str, object] = {}
        self.dropped = Counter("idnode_requests_dropped_total",
                               "Requests dropped without an answer, by protocol and reason.",
                               ("protocol", "reason"), registry=self.registry)
        self.udp_rate_sources = Gauge("idnode_hs_udp_rate_sources",
                                      "Source prefixes the UDP response-rate limit tracks.",
                                      registry=self.registry, multiprocess_mode="livesum")
        Gauge("idnode_build_info", "Build information.", ("version",), registry=self.registry,
              multiprocess_mode="max").labels(version).set(1)
        self._ops: dict[tuple[str, str], RequestMetrics] = {}

    def op(self, protocol: str, operation: str) -> RequestMetrics:
        """The children for one operation; call at start-up, keep the result."""
        key = (protocol, operation)
        if key not in self._ops:
            self._ops[key] = RequestMetrics(self._requests, self._duration, protocol, operation)
        return self._ops[key]

    def auth_failed(self, protocol: str) -> None:
        """Count a failed authentication over ``protocol`` (rest, hs-tcp, ...)."""
        child = self._auth_children.get(protocol)
        if child is None:
            child = self._auth_children[protocol] = self.auth_failures.labels(protocol)
        child.inc()

    def flush(self, collect=None) -> None:
        """Add the tallies to their counters; ``collect()`` brings the stages'
        scrape-time figures (sizes, and counts they keep as plain ints)."""
        if collect is not None:
            collect()
        for op in self._ops.values():
            op.flush()

    def render(self, identifiers: int, prefixes: int, collect=None) -> bytes:
        """The exposition, flushed first (:meth:`flush`)."""
        self.identifiers.set(identifiers)
        self.prefixes.set(prefixes)
        self.flush(collect)
        if self._multiprocess_dir:
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined, path=self._multiprocess_dir)
            return generate_latest(combined)
        return generate_latest(self.registry)


# -- connections (resolver.connections) ------------------------------------------------------------------------

class ConnectionMetrics:
    """Client connections of the HTTP and Handle TCP servers (protocol ``http``
    or ``hs-tcp``): open now, refused at a limit (reason ``per_source``,
    ``total``, ``fd_reserve``), cut by the node (reason ``header_timeout``,
    ``body_timeout``, ``message_timeout``: a request not whole in time;
    ``send_timeout``: a client that stopped reading its replies), and the
    process's file-descriptor limit with the connections it leaves room for."""

    PROTOCOLS = ("http", "hs-tcp")
    REFUSALS = ("per_source", "total", "fd_reserve")

    def __init__(self, registry: CollectorRegistry):
        self.open = Gauge("idnode_connections", "Open client connections, by protocol.", ("protocol",),
                          registry=registry, multiprocess_mode="livesum")
        self.refused = Counter("idnode_connections_refused_total",
                               "Connections refused at once at a limit, by protocol and reason.",
                               ("protocol", "reason"), registry=registry)
        self.cut = Counter("idnode_connections_cut_total",
                           "Connections the node closed at a timeout, by protocol and reason.",
                           ("protocol", "reason"), registry=registry)
        self.fd_limit = Gauge("idnode_fd_limit", "The file-descriptor limit of a node process (RLIMIT_NOFILE).",
                              registry=registry, multiprocess_mode="max")
        self.capacity = Gauge("idnode_connections_capacity",
                              "Connections taken at once, all protocols, before the file-descriptor reserve.",
                              registry=registry, multiprocess_mode="livesum")
        for protocol in self.PROTOCOLS:
            self.open.labels(protocol)
            for reason in self.REFUSALS:
                self.refused.labels(protocol, reason)

    def cuts(self, protocol: str, *reasons: str) -> dict:
        """The ``cut`` children of one protocol, by reason (look up once)."""
        return {reason: self.cut.labels(protocol, reason) for reason in reasons}
