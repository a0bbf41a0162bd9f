"""The operations layer: one core under every front end.

REST, batch, the proxy, the Handle protocol over TCP, UDP and HTTP, and the
CLI parse their input, call the :class:`Core`, and render its answer. Every
rule is decided here once:

* who is asking (:mod:`.caller`) and proving it, for Basic secrets and Handle
  challenge answers alike (:mod:`.auth`), under one lock-out policy for all
  protocols and workers (:mod:`.lockout`);
* who may do what (:mod:`.permissions`: HS_ADMIN on the identifier or its
  prefix, HS_VLIST groups, permission bits, read-only values; the node admin
  on top);
* which values a caller may read and how filters match (:mod:`.visibility`);
* when an unverified source is answered at all (:mod:`.throttle`: the
  response-rate limit of UDP answers per source prefix);
* what a disabled prefix means (:mod:`.reads`, :mod:`.writes`,
  :mod:`.prefixes`): not served, not written, its identities cannot act;
* resolution through the pipeline, writes as conditional changes
  (:mod:`.writes`), prefix management (:mod:`.prefixes`) and delegation
  (:mod:`.delegation`);
* who may have the node resolve elsewhere for them (:mod:`.recursion`).

Every refusal is :class:`.errors.Refused` with the Handle response code.
"""

from __future__ import annotations

import time
from typing import Callable

from registry.errors import StoreUnavailable
from registry.store import Store

from ..pipeline import Pipeline
from .auth import Authenticator
from .delegation import Delegation
from .permissions import Permissions
from .prefixes import Prefixes
from .reads import Reads, View
from .recursion import RecursionPolicy
from .throttle import ResponseRateLimit, WorkBudget
from .writes import Writes


class Core(Reads, Writes, Prefixes, Delegation):
    def __init__(self, store: Store, pipeline: Pipeline, auth: Authenticator, *,
                 clock: Callable[[], float] = time.time, udp_limit: ResponseRateLimit | None = None,
                 work: WorkBudget | None = None, recursion: RecursionPolicy | None = None) -> None:
        self.store = store
        self.pipeline = pipeline
        self.auth = auth
        self.udp_limit = udp_limit  # None: every UDP request is answered
        self.work = work            # None: public-key work is not limited
        self.recursion = recursion  # None: the node never resolves elsewhere for a client
        self.permissions = Permissions(store)
        self.clock = clock          # unix seconds: the time values are stamped with
        self._sizes = (0, 0)        # the last sizes read, for a scrape while the store is away

    def may_work(self, source: str, cost: float) -> bool:
        """Whether ``source`` may make the node do ``cost`` units of public-key
        work now (signatures, key exchanges: :class:`.throttle.WorkBudget`)."""
        return self.work is None or self.work.spend(source, cost)

    async def node_prefix(self) -> str:
        """The node's own prefix (NotInitialised when there is none)."""
        return await self.store.secondary_prefix()

    async def sizes(self) -> tuple[int, int]:
        """Identifiers and enterprise prefixes held (for /metrics); while the
        store is unavailable, the last ones read: metrics matter most then."""
        try:
            self._sizes = (await self.store.count_handles(), await self.store.count_prefixes())
        except StoreUnavailable:
            pass
        return self._sizes


__all__ = ["Core", "View"]
