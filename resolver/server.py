"""Server lifecycle: open the store, serve HTTP, drain and stop on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version
from typing import AsyncIterator, Callable

from aiohttp import web

from registry import open_store, provision
from registry.store import Store

from . import logs, serverkey
from .app import make_app
from .connections import Door, FdGate, return_big_buffers
from .core import Core
from .core.auth import Authenticator
from .core.lockout import Lockout
from .core.recursion import RecursionPolicy
from .core.throttle import WorkBudget, udp_limit
from .hs.authdir import AuthDir
from .hs.listeners import start_listeners
from .hs.service import HandleService
from .hs.site import site_info
from .http_connections import HttpLimits, HttpSite
from .metrics import ConnectionMetrics, Metrics
from .node import Node
from .pipeline import build_pipeline
from .settings import Settings, SettingsError
from .stages.upstream.publish import Publisher
from .shared import SharedState

log = logging.getLogger("idnode.server")


def _version() -> str:
    try:
        return version("idnode")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True, slots=True)
class Running:
    node: Node
    store: Store
    http_port: int
    hs_port: int                         # TCP and UDP port of the Handle protocol
    hs: HandleService

    @property
    def url(self) -> str:
        host = self.node.settings.http.bind
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.http_port}"


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, shutdown_timeout: float = 5.0,
                  clock: Callable[[], float] | None = None, reuse_port: bool = False,
                  metrics_dir: str | None = None, shared_path: str | None = None) -> AsyncIterator[Running]:
    """Start the node (store, pipeline, core, HTTP, Handle TCP/UDP) and stop it
    in reverse order; port 0 picks a free port. ``clock`` (unix seconds) is the
    node's wall clock: reply expiry, value timestamps (tests step it). Workers of
    one node pass ``reuse_port``, their shared Prometheus ``metrics_dir`` and the
    supervisor's ``shared_path`` (:mod:`resolver.shared`); alone, a node keeps
    its shared state in private memory."""
    clock = clock or time.time
    async with contextlib.AsyncExitStack() as stack:
        store = open_store(settings.store.url, home=settings.home, create=False, limits=settings.registry.limits(),
                           redis=settings.store.redis_options())
        await store.open()
        stack.push_async_callback(store.close)
        await store.secondary_prefix()       # refuses an uninitialised home early
        shared = SharedState.attach(shared_path) if shared_path else SharedState.private()
        stack.callback(shared.close)
        metrics = Metrics(_version(), multiprocess_dir=metrics_dir)
        pipeline = build_pipeline(settings, store, shared, metrics.registry)
        await pipeline.start()
        stack.push_async_callback(pipeline.stop)
        auth = Authenticator(store, Lockout(shared, settings.auth, clock, everywhere=store.failure_counts()), on_failure=metrics.auth_failed)
        core = Core(store, pipeline, auth, clock=clock,
                    udp_limit=udp_limit(settings.handle, on_size=metrics.udp_rate_sources.set),
                    work=WorkBudget(settings.handle), recursion=RecursionPolicy(settings.upstream))
        node = Node(settings, core, metrics, pipeline)
        flusher = asyncio.create_task(_flush_metrics(metrics, pipeline), name="idnode-metrics-flush")
        stack.push_async_callback(_stop_flushing, flusher, metrics, pipeline)
        auth_dir = AuthDir(Path(shared_path).parent / "auth") if shared_path else AuthDir.private()
        stack.callback(auth_dir.close)
        hs = HandleService(settings, core, metrics, clock=clock, server_key=serverkey.load_or_create(settings.home),
                           auth_dir=auth_dir)
        runner = web.AppRunner(make_app(node, hs), access_log=None, handle_signals=False,
                               shutdown_timeout=shutdown_timeout)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        connections = ConnectionMetrics(metrics.registry)
        gate = FdGate(connections)           # after the store's files: what is left is for connections
        http, handle = settings.http, settings.handle
        http_door = Door(gate, connections, "http", max_connections=http.max_connections,
                         per_source=http.max_connections_per_source)
        site = HttpSite(runner, HttpLimits(runner.server, http_door, http, connections), http.bind, http.port,
                        reuse_port=reuse_port)
        await site.start()
        port = site.port
        tcp_door = Door(gate, connections, "hs-tcp", max_connections=handle.max_connections,
                        per_source=handle.max_connections_per_source)
        listeners = await start_listeners(hs, settings, tcp_door, connections, reuse_port=reuse_port)
        stack.push_async_callback(listeners.stop, shutdown_timeout)
        site = site_info(settings, tcp_port=listeners.port, udp_port=listeners.port, http_port=port,
                         public_key=hs.server_public_key).encode()
        hs.advertise(site)                   # get site info
        if pipeline.upstream is not None:
            pipeline.upstream.advertise(site)    # the prefix records of the prefixes homed here
        await provision.advertise_site(store, site)     # ... and its own (0.NA/<prefix>, stored)
        if settings.upstream.publish_to:         # ... and kept at the top-level node
            await _start_publishing(stack, settings, store, hs, metrics, site)
        yield Running(node, store, port, listeners.port, hs)


async def _start_publishing(stack: contextlib.AsyncExitStack, settings: Settings, store: Store, hs: HandleService,
                            metrics: Metrics, site: bytes) -> None:
    try:
        publisher = Publisher(settings.upstream, store, hs.server_key, metrics.registry,
                              own_prefix=await store.secondary_prefix(), interval=settings.store.poll_interval)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    publisher.advertise(site)
    task = asyncio.create_task(publisher.run(), name="idnode-publisher")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stack.push_async_callback(stop)


METRICS_FLUSH_SECONDS = 1.0


async def _flush_metrics(metrics: Metrics, pipeline) -> None:
    """Counts kept as plain ints reach the counters at least once a second, so
    a scrape answered by another worker sees them (:meth:`Metrics.flush`)."""
    while True:
        await asyncio.sleep(METRICS_FLUSH_SECONDS)
        metrics.flush(pipeline.collect)


async def _stop_flushing(task: asyncio.Task, metrics: Metrics, pipeline) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    metrics.flush(pipeline.collect)


async def _serve_forever(settings: Settings, **options) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(settings, **options) as running:
        log.info("serving", extra={"http": running.url, "hs_port": running.hs_port, "pid": os.getpid(),
                                   "prefix": await running.node.core.node_prefix()})
        await stop.wait()
        log.info("draining")
    log.info("stopped")


def run(settings: Settings, **options) -> None:
    """Serve until SIGINT or SIGTERM (blocking); ``options`` go to :func:`serving`."""
    logs.configure(settings.log.format, settings.log.level)
    return_big_buffers()
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:       # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    runner(_serve_forever(settings, **options))
