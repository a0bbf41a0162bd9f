"""One benchmark run: seed a home, serve it, load it, measure the ceilings, report.

Order: seed a fresh home under a temp dir; for each cache setting the
selected scenarios need, start the node pinned to the server core and run
its scenarios (closed loop first, then open loop at fractions of that
maximum, then the writes); then ``idnode import`` into another fresh home;
then, with the node stopped, every ceiling on the same core with the same
generator, requests and reply sizes; then redis-benchmark; then the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from . import external, measure, procstat, redisproc, report, servers
from .loadgen import load_cpu_count
from .scenarios import Scenario
from .seed import seed_home

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class Options:
    """What to run and how hard. :func:`preset` gives the quick and full defaults."""
    size: int = 1_000_000
    duration: float = 10.0
    warmup: float = 2.0
    open_duration: float = 5.0
    open_fractions: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
    open_ceilings: bool = True             # the ceilings' latency at the same offered rates
    hot_keys: int = 1000
    pool_cap: int = 262_144                # distinct requests a generator cycles through
    register_pool: int = 100_000           # new handles for the registration scenarios
    udp_inflight: int = 64
    tcp_connections: int = 32
    http_connections: int = 32
    batch_items: int = 100                 # handles per CBOR batch request
    procs: int = 0                         # generator processes; 0: one per load core
    http_generator: str = "auto"           # auto (wrk when installed) | python | wrk
    redis_requests: int = 1_000_000
    retries: int = 3                       # runs again while other processes disturb one (see measure.DISTURBED)
    quick: bool = False
    output: Path = RESULTS_DIR
    records: str = "large"                 # small | mixed | large (bench.records)
    workers: int = 1                       # node worker processes, all pinned to the node's core
    store: str = "sqlite"                  # sqlite | redis | cluster: the registry the node and the import use


def preset(*, quick: bool, **changes) -> Options:
    """``make bench-quick`` (10k identifiers, about a minute) or ``make bench`` (1M)."""
    base = Options()
    if quick:
        base = replace(base, size=10_000, duration=1.0, warmup=0.3, open_duration=1.0,
                       open_fractions=(0.25, 0.5, 0.9), open_ceilings=False, pool_cap=20_000,
                       register_pool=5_000, redis_requests=100_000, retries=0, quick=True)
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class Run:
    """The state of one run, shared by the measuring functions."""
    opts: Options
    plan: procstat.CpuPlan
    tmp: Path
    say: Callable[[str], None]
    stamp: str
    procs: int = 1
    home: object = None
    hs_note: str = ""
    cache_note: str = ""
    workers_flag: bool = False
    results: dict[str, dict] = field(default_factory=dict)
    specs: dict[str, object] = field(default_factory=dict)       # scenario -> what its ceiling needs
    pools: dict[tuple, object] = field(default_factory=dict)     # key sets and encoded requests, built once
    ceilings: list[dict] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    redis: object = None                   # the run's own redis-server or cluster (bench.redisproc), if any

    @property
    def store_url(self) -> str | None:
        """The node's registry: None for the embedded store in its home."""
        return self.redis.url if self.redis is not None else None

    def import_store_url(self) -> str | None:
        """An empty registry of the run's kind for ``idnode import``: database 1
        of the single Redis; the cluster emptied (the node is done with it)."""
        if self.redis is None:
            return None
        if self.opts.store == "redis":
            return self.redis.url.rsplit("/", 1)[0] + "/1"
        self.redis.flush()
        return self.redis.url


def _serve_params() -> set[str]:
    """Options `idnode serve` accepts in this tree (the HS servers and workers arrive separately)."""
    from resolver.cli import cli
    serve = cli.commands.get("serve")
    return {opt for p in (serve.params if serve else []) for opt in getattr(p, "opts", [])}


def _cache_supported() -> bool:
    from resolver.settings import Settings
    names = {f.name for f in dataclasses.fields(Settings)}
    return "cache" in names and "enabled" in {f.name for f in dataclasses.fields(Settings().cache)}


@contextlib.contextmanager
def _node(run: Run, cache_on: bool) -> Iterator[servers.Server]:
    env = {"IDNODE_LOG_LEVEL": "warning", "IDNODE_CACHE_ENABLED": "1" if cache_on else "0"}
    if run.store_url:
        env["IDNODE_STORE"] = run.store_url
    hs = not run.hs_note
    workers = ["--workers", str(run.opts.workers)] if run.workers_flag else []
    node = servers.start_node(run.home.path, env=env, cpus=run.plan.server, log=run.tmp / "node.log", hs=hs,
                              probe_handle=measure.probe_handle(), extra=workers)
    if hs and node.hs_port is None:
        run.hs_note = f"HS servers not available: {node.note}"
    try:
        yield node
    finally:
        node.stop()


def _order(scenarios: list[Scenario]) -> list[Scenario]:
    rank = {"resolve": 0, "open": 1, "register": 2}
    return sorted(scenarios, key=lambda s: rank.get(s.kind, 3))


def _groups(run: Run, scenarios: list[Scenario]) -> list[tuple[bool, list[Scenario]]]:
    if not _cache_supported():
        run.cache_note = "the node has no cache setting: hot and cold differ only in their key sets"
        return [(True, scenarios)] if scenarios else []
    on = [s for s in scenarios if s.cache]
    off = [s for s in scenarios if not s.cache]
    return [(flag, group) for flag, group in ((True, on), (False, off)) if group]


def _with_twins(scenarios: list[Scenario]) -> list[Scenario]:
    """Open-loop scenarios need their closed-loop maximum: add it when not selected."""
    from .scenarios import BY_NAME
    names = {s.name for s in scenarios}
    extra = [BY_NAME[s.closed_twin] for s in scenarios if s.kind == "open" and s.closed_twin not in names]
    return scenarios + [s for i, s in enumerate(extra) if s not in extra[:i]]


def run(opts: Options, scenarios: list[Scenario], say: Callable[[str], None] = print) -> dict:
    """Run ``scenarios``; write the JSON, table and plots; return the report."""
    import tempfile

    plan = procstat.cpu_plan()
    try:
        before = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        before = None
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="idnode-bench-") as tmp:
        r = Run(opts, plan, Path(tmp), say, stamp)
        r.procs = opts.procs or load_cpu_count(plan.load)
        procstat.pin(plan.load)
        try:
            r.redis = redisproc.start_store(opts.store, r.tmp / "redis", cpus=plan.server)
            _run(r, scenarios)
        finally:
            if r.redis is not None:
                r.redis.stop()
            if before:
                procstat.pin(before)
    return report.finish(r)


def _run(r: Run, scenarios: list[Scenario]) -> None:
    opts = r.opts
    scenarios = _with_twins(scenarios)
    r.context = report.context(r)
    r.say(f"idnode bench: {len(scenarios)} scenarios, {opts.size:,} identifiers ({opts.records} records"
          + (f", registry on {r.store_url}" if r.store_url else "") + "), "
          f"{opts.duration:g} s per run after {opts.warmup:g} s warm-up")
    r.say(f"cores: {r.plan.describe()}; {r.procs} generator process(es)")
    params = _serve_params()
    r.workers_flag = "--workers" in params
    if "--hs-port" not in params:
        r.hs_note = "HS servers not available: `idnode serve` has no --hs-port in this tree"
    node_scenarios = [s for s in scenarios if s.needs_node]
    if node_scenarios:
        t0 = time.perf_counter()
        r.home = seed_home(r.tmp / "home", opts.size, opts.records, store=r.store_url)
        r.say(f"seeded {opts.size:,} {opts.records} records in {time.perf_counter() - t0:.1f} s "
              f"({opts.size / max(r.home.seconds, 1e-9):,.0f} records/s through register_batch)")
    for cache_on, group in _groups(r, node_scenarios):
        with _node(r, cache_on) as node:
            r.say(f"node pid {node.pid} ready (cache {'on' if cache_on else 'off'}): http {node.port}"
                  + (f", hs {node.hs_port}" if node.hs_port else ""))
            for s in _order(group):
                _one(r, s, lambda s=s: measure.scenario(r, s, node, cache_on))
    for s in scenarios:
        if s.kind == "import":
            _one(r, s, lambda s=s: measure.import_rows(r, s))
    measure.ceilings(r)
    if external.redis_available():
        try:
            r.ceilings.append(measure.redis(r))
            if opts.store != "sqlite":              # the writes' ceiling too
                r.ceilings.append(measure.redis(r, "set"))
        except (OSError, ValueError, servers.ServerError, Exception) as exc:   # noqa: BLE001 - reported
            r.say(f"redis-benchmark: skipped ({type(exc).__name__}: {exc})")
    else:
        r.say("redis-benchmark: skipped (redis-server / redis-benchmark not installed)")


def _one(r: Run, s: Scenario, work: Callable[[], dict]) -> None:
    if s.needs_hs and r.hs_note:
        r.results[s.name] = report.skipped(s, r.hs_note)
        r.say(f"{s.name}: skipped ({r.hs_note})")
        return
    t0 = time.perf_counter()
    try:
        entry = work()
    except (OSError, RuntimeError, ValueError) as exc:
        entry = report.failed(s, f"{type(exc).__name__}: {exc}")
    r.results[s.name] = entry
    r.say(f"{s.name}: {report.one_line(entry)} [{time.perf_counter() - t0:.1f} s]")
