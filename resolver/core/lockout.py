"""One policy for failed logins, for every protocol and every worker of a node.

Failures are counted per *source* (the client's address; an IPv6 address by
its /64, which one client usually holds whole), never per identity: wrong
secrets sent from one place lock that place out, and the real admin, asking
from elsewhere, is never locked out by someone else's guesses.

* Every failure is answered after a delay that grows with the source's
  count: ``auth.failure_delay`` times the count, at most ten times.
* Past ``auth.lockout_failures`` failures within ``auth.lockout_seconds``
  (counted from the first of them), the source is refused without a check
  until that window ends. A success does not reset the count, so a client
  holding one valid secret cannot interleave its own logins to keep guessing
  others'.

The counters live in the node's shared memory (:mod:`resolver.shared`), so
REST Basic and Handle challenge answers, on any worker, count together. With
a store that several node instances share (Redis), they are counted in the
store too (``Store.failure_counts``), so every instance sees every failure;
while the store is away each node goes on counting on its own, and a source
is judged by the larger of the two counts.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from typing import Callable

from protocol.codes import RC
from registry.errors import StoreUnavailable
from registry.store import FailureCounts

from ..settings import AuthSettings
from ..shared import SharedState
from .errors import Refused

log = logging.getLogger("idnode.auth")

MAX_DELAY_STEPS = 10


def source_of(peer: str) -> str:
    """What failures are counted under: the IPv4 address, the IPv6 /64."""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Lockout:
    def __init__(self, shared: SharedState, settings: AuthSettings,
                 clock: Callable[[], float] = time.time, *, everywhere: FailureCounts | None = None) -> None:
        self._shared = shared
        self._settings = settings
        self._clock = clock
        self._window = int(math.ceil(settings.lockout_seconds))
        self._everywhere = everywhere
        self._away = False

    def _now(self) -> int:
        return int(self._clock())

    async def _count(self, source: str, add: bool) -> int:
        now = self._now()
        local = (self._shared.add_failure if add else self._shared.failures)(source, now, self._window)
        if self._everywhere is None:
            return local
        try:
            count = await (self._everywhere.add_failure if add else self._everywhere.failures)(
                source, now, self._window)
        except StoreUnavailable as exc:
            if not self._away:
                log.warning("failed logins are counted by this node alone until the store is back",
                            extra={"error": str(exc)})
            self._away = True
            return local
        if self._away:
            log.warning("failed logins are counted with the other nodes again")
            self._away = False
        return max(count, local)

    async def check(self, peer: str) -> None:
        """Refuse (RC 403) a source that is locked out."""
        if await self._count(source_of(peer), False) >= self._settings.lockout_failures:
            raise Refused(RC.AUTHENTICATION_FAILED,
                          "too many failed authentications from this address; try again later",
                          retry_after=self._settings.lockout_seconds)

    async def failed(self, peer: str) -> float:
        """Count a failure of ``peer``; the delay to answer it after (seconds)."""
        count = await self._count(source_of(peer), True)
        return self._settings.failure_delay * min(count, MAX_DELAY_STEPS)
