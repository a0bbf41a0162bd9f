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
REST Basic and Handle challenge answers, on any worker, count together.
"""

from __future__ import annotations

import ipaddress
import math
import time
from typing import Callable

from protocol.codes import RC

from ..settings import AuthSettings
from ..shared import SharedState
from .errors import Refused

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
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._shared = shared
        self._settings = settings
        self._clock = clock
        self._window = int(math.ceil(settings.lockout_seconds))

    def _now(self) -> int:
        return int(self._clock())

    def check(self, peer: str) -> None:
        """Refuse (RC 403) a source that is locked out."""
        count = self._shared.failures(source_of(peer), self._now(), self._window)
        if count >= self._settings.lockout_failures:
            raise Refused(RC.AUTHENTICATION_FAILED,
                          "too many failed authentications from this address; try again later",
                          retry_after=self._settings.lockout_seconds)

    def failed(self, peer: str) -> float:
        """Count a failure of ``peer``; the delay to answer it after (seconds)."""
        count = self._shared.add_failure(source_of(peer), self._now(), self._window)
        return self._settings.failure_delay * min(count, MAX_DELAY_STEPS)
