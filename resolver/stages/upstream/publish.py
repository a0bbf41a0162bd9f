"""Publishing: keeping this node's prefix records at the top-level node.

The registry marks a prefix in its outbox (``registry.outbox``) in the same
transaction as every change of what the prefix means to the hierarchy: its
creation, its state, its delegation. The :class:`Publisher` sends each
marked prefix's current record to ``[upstream] publish_to`` as a Handle
client, as the national system's secondary nodes keep their prefixes at the
top-level node:

* an enabled prefix: ``0.NA/<prefix>`` created, or replaced when it exists
  (opCode 100 with OVRW), holding where the prefix is served (this node's
  HS_SITE, or the enterprise node's HS_SITE or HS_SERV it is delegated to)
  and an HS_ADMIN naming the publishing identity;
* a disabled prefix: ``0.NA/<prefix>`` deleted (opCode 101; one that is not
  there is already right).

It authenticates as ``[upstream] publish_as`` (default ``300:<this node's
prefix>/ADMIN``: the identity the top-level node made when it allocated
this node's prefix with this node's public key, ``idnode key show``),
answering challenges with the node's server key. A failure is kept in the
outbox with its reason and tried again after 1, 2, 4 ... seconds, at most
:data:`MAX_BACKOFF`; other prefixes go on meanwhile. The local change was
committed before and stays whatever the top-level node does.

One process publishes among all the processes of all the nodes on a store:
the holder of the outbox's lease (``registry.outbox.take_lease``, held for
:data:`LEASE_SECONDS` and renewed while it works), so two publishers never
race an older state past a newer one at the top-level node. Another process
takes the lease over when its holder stops renewing it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from protocol.codes import RC
from protocol.values import HandleValue
from registry import provision
from registry.errors import RegistryError
from registry.model import ENABLED
from registry.outbox import Pending
from registry.store import Store

from ...hs.client import HandleClient, HandleClientError, HandleResponseError, PublicKeyAuth, parse_server
from ...settings import UpstreamSettings, servers

log = logging.getLogger("idnode.upstream")

MAX_BACKOFF = 60.0          # seconds between tries of one prefix, at most
LEASE_SECONDS = 30.0        # how long the publisher's lease holds without renewal
RENEW_BELOW = 20.0          # the holder renews it when less than this is left ...
WORK_MARGIN = 10.0          # ... and starts a prefix only with at least this left


def publishing_identity(settings: UpstreamSettings, own_prefix: str) -> tuple[int, str]:
    """``(index, handle)`` the node publishes as (ValueError when ``publish_as`` is not INDEX:HANDLE)."""
    text = settings.publish_as or f"300:{provision.prefix_admin_handle(own_prefix)}"
    index, sep, handle = text.partition(":")
    if not sep or not index.isdigit() or "/" not in handle:
        raise ValueError(f"upstream.publish_as must be INDEX:HANDLE, got {text!r}")
    return int(index), handle


def backoff(tries: int) -> float:
    """Seconds before try ``tries + 1``: doubling from 1, at most MAX_BACKOFF, jittered."""
    return min(MAX_BACKOFF, 2.0 ** min(tries, 16)) * random.uniform(0.5, 1.0)


class Publisher:
    def __init__(self, settings: UpstreamSettings, store: Store, server_key: Any, registry: CollectorRegistry, *,
                 own_prefix: str, interval: float = 0.5, clock=time.time) -> None:
        """``own_prefix``: this node's; ValueError when ``publish_as`` is not INDEX:HANDLE."""
        self._settings = settings
        self._targets = servers(settings.publish_to)
        self._store = store
        self._key = server_key
        self._owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._until = 0.0              # until when this process holds the lease (unix seconds)
        self._next_try = 0.0           # when a process without it asks again
        self._interval = interval
        self._clock = clock
        self._site: bytes | None = None
        self._own = own_prefix
        self._identity = publishing_identity(settings, own_prefix)
        self.pending = Gauge("idnode_upstream_outbox_pending", "Prefixes whose record the top-level node has yet to "
                             "be told (the publishing process's count).", registry=registry,
                             multiprocess_mode="max")
        self.oldest = Gauge("idnode_upstream_outbox_oldest_seconds", "Age of the oldest change not yet published.",
                            registry=registry, multiprocess_mode="max")
        self.published = Counter("idnode_upstream_published_total", "Prefix records sent to the top-level node, "
                                 "by outcome: published, failed (tried again later).", ("outcome",),
                                 registry=registry)

    def advertise(self, site: bytes) -> None:
        """This node's encoded HS_SITE: what an undelegated prefix's record says."""
        self._site = site

    async def run(self) -> None:
        """Publish until cancelled, while this process holds the lease."""
        try:
            while True:
                try:
                    if await self._leased():
                        await self.publish_due()
                except RegistryError as exc:              # the store is away: the outbox waits there
                    log.warning("upstream outbox unreadable", extra={"error": str(exc)})
                except Exception:                         # a defect: said, and the next look goes on
                    log.exception("publishing failed unexpectedly")
                await asyncio.sleep(self._interval)
        finally:
            if self._until > self._clock():               # stopping: let another process take over now
                try:
                    await self._store.outbox_lease(self._owner, 0.0)
                except RegistryError:
                    pass

    async def _leased(self) -> bool:
        """Whether this process is the publisher (taking or renewing the lease when due)."""
        now = self._clock()
        if self._until - now <= RENEW_BELOW and now >= self._next_try:
            self._until = await self._store.outbox_lease(self._owner, LEASE_SECONDS)
            if not self._until:
                self._next_try = now + LEASE_SECONDS / 3
        return self._until - self._clock() > WORK_MARGIN

    async def publish_due(self) -> int:
        """Publish every marked prefix that is due, oldest change first; how many went out."""
        pending = await self._store.outbox()
        now = self._clock()
        done = tried = 0
        for key, item in sorted(pending.items(), key=lambda kv: kv[1].since):
            if item.due > now or self._site is None:
                continue
            if self._until - self._clock() <= WORK_MARGIN:     # the lease runs short: renew it first
                break
            tried += 1
            try:
                await self._publish(item)
            except (HandleClientError, ValueError, OSError) as exc:
                self.published.labels("failed").inc()
                await self._store.outbox_failed(key, item.version, str(exc), self._clock() + backoff(item.tries))
                log.warning("publishing a prefix failed", extra={"prefix": item.prefix, "tries": item.tries + 1,
                                                                 "error": str(exc)})
                continue
            self.published.labels("published").inc()
            if await self._store.outbox_settle(key, item.version):
                done += 1
        left = await self._store.outbox() if tried else pending      # read again only when it changed
        self.pending.set(len(left))
        self.oldest.set(max((now - i.since for i in left.values()), default=0.0))
        return done

    async def _record(self, prefix: str) -> list[HandleValue] | None:
        """What the top-level node should hold for ``prefix``: its record, or None (none)."""
        info = await self._store.get_prefix(prefix)
        if info is None or info.state != ENABLED:
            return None
        where = await provision.delegation_of(self._store, prefix)
        if where is None:
            where = HandleValue(provision.SITE_INDEX, "HS_SITE", self._site)
        return provision.prefix_record_values(where, self._own, self._identity)

    async def _publish(self, item: Pending) -> None:
        values = await self._record(item.prefix)
        handle = provision.prefix_record_handle(item.prefix)
        auth = PublicKeyAuth(self._identity[1], self._identity[0], self._key)
        failure: Exception | None = None
        for target in self._targets[:2]:                  # one retry on another top-level server
            host, port = parse_server(target)
            try:
                async with HandleClient(host, port, timeout=self._settings.timeout) as client:
                    if values is None:
                        try:
                            await client.delete_handle(handle, auth)
                        except HandleResponseError as exc:
                            if exc.code != RC.HANDLE_NOT_FOUND:
                                raise
                    else:
                        await client.create_handle(handle, values, auth, overwrite=True)
                return
            except HandleResponseError:
                raise                                     # the top-level node said no: its word stands
            except (HandleClientError, OSError) as exc:
                failure = exc
        raise failure if failure is not None else ValueError("upstream.publish_to names no server")
