"""A fresh node home: the node, its enterprise prefixes and N records.

Records go in through ``Store.register_batch`` (the store's batch write,
under the operator's ``idnode import``), thousands per transaction. The
admin secrets are generated per run and kept in memory only.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from protocol.codes import RC
from registry import open_store, provision
from resolver.settings import load_settings

from .records import DEFAULT_KIND, ENTERPRISES, SECONDARY_PREFIX, check_kind, handle_of, record_values

SEED_BATCH = 5000
ACTOR = "bench"


class SeedError(RuntimeError):
    """The home could not be set up as asked."""


@dataclass(frozen=True, slots=True)
class Home:
    path: Path
    records: int
    node_admin: str               # identity, e.g. 300:0.NA/88.118
    node_secret: str
    seconds: float                # time taken to write the records

    def __repr__(self) -> str:    # the secret stays out of logs and tracebacks
        return f"Home({self.path}, records={self.records})"


async def _seed(home: Path, records: int, kind: str, store: str | None) -> Home:
    settings = load_settings(env={}, overrides={"node.home": str(home), "store.url": store})
    secret = secrets.token_urlsafe(24)
    registry = open_store(settings.store.url, home=settings.home, create=True, limits=settings.registry.limits(),
                          redis=settings.store.redis_options())
    await registry.open()
    try:
        await provision.init_node(registry, SECONDARY_PREFIX, secret, actor=ACTOR)
        for prefix, owner in ENTERPRISES:
            await provision.create_prefix(registry, prefix, owner, password=secrets.token_urlsafe(24), actor=ACTOR)
        t0 = time.perf_counter()
        for at in range(0, records, SEED_BATCH):
            items = [(handle_of(i), record_values(i, kind)) for i in range(at, min(records, at + SEED_BATCH))]
            results = await registry.register_batch(items, overwrite=False, actor=ACTOR)
            failed = [r for r in results if r.code != RC.SUCCESS]
            if failed:
                raise SeedError(f"seeding failed for {failed[0].handle}: {failed[0].message}")
        seconds = time.perf_counter() - t0
    finally:
        await registry.close()
    admin = f"{provision.ADMIN_INDEX}:{provision.node_admin_handle(SECONDARY_PREFIX)}"
    return Home(home, records, admin, secret, seconds)


def seed_home(home: Path, records: int, kind: str = DEFAULT_KIND, *, store: str | None = None) -> Home:
    """Create a node in ``home`` (which must not hold one) with ``records`` records
    of ``kind`` (small, mixed or large: see :mod:`bench.records`), its registry
    at ``store`` (a store URL; None: the embedded one in the home)."""
    return asyncio.run(_seed(home, records, check_kind(kind), store))
