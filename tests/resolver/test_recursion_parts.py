"""The bounded parts of recursion on their own: the breakers (open, half-open,
closed again, the sites they track bounded) and the upstream metric labels
(bounded, the rest counted as "other"). The walk itself is tested against
real upstreams in test_recursion.py."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from resolver.stages.upstream.recursion import MAX_LABELS, Breakers, Table, _Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breakers(clock: Clock, limit: int = 100) -> tuple[Breakers, Gauge]:
    gauge = Gauge("open", "open breakers", registry=CollectorRegistry())
    return Breakers(failures=2, seconds=10.0, limit=limit, clock=clock, gauge=gauge), gauge


def test_a_breaker_opens_after_failures_in_a_row_lets_one_try_through_and_closes_on_success():
    clock = Clock()
    b, gauge = breakers(clock)
    site = ("127.0.0.1:1",)
    b.failed(site)
    assert b.closed(site)                         # one failure: still asked
    b.failed(site)
    assert not b.closed(site) and gauge._value.get() == 1
    clock.now += 10.0
    assert b.closed(site)                         # half-open: this one request tries it ...
    assert not b.closed(site)                     # ... and the next waits for its outcome
    b.succeeded(site)
    assert b.closed(site) and b.open_count() == 0 and gauge._value.get() == 0


def test_a_success_between_failures_starts_the_count_again():
    b, _ = breakers(Clock())
    site = ("127.0.0.1:1",)
    b.failed(site)
    b.succeeded(site)
    b.failed(site)
    assert b.closed(site)


def test_the_sites_breakers_track_are_bounded():
    b, _ = breakers(Clock(), limit=2)
    for n in range(5):
        b.failed((f"127.0.0.1:{n}",))
        b.failed((f"127.0.0.1:{n}",))
    assert len(b._sites) == 2 and b.open_count() == 2


def test_upstream_labels_are_bounded():
    metrics = _Metrics(CollectorRegistry())
    labels = {metrics.upstream(f"127.0.0.1:{n}") for n in range(MAX_LABELS + 10)}
    assert len(labels) == MAX_LABELS + 1 and "other" in labels
    assert metrics.upstream("127.0.0.1:0") == "127.0.0.1:0"            # one seen before keeps its label


def test_a_table_keeps_its_bound_and_its_expiry():
    clock = Clock()
    table = Table(2, clock)
    for key in "abc":
        table.put(key, key.upper(), ttl=5)
    assert len(table) == 2 and table.get("a") is None and table.get("c") == "C"
    table.put("zero", "kept for no time", ttl=0)
    assert table.get("zero") is None
    clock.now += 5
    assert table.get("c") is None
