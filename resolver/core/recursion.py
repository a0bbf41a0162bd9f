"""Who may have the node resolve elsewhere for them.

A client asks by setting REC (Handle) or ``?recursive=true`` (REST). The
node recurses only when ``[upstream] recursion`` is on and the client's
address is in ``[upstream] allow_recursion_from`` (loopback by default): an
open recursive resolver is an amplifier, and the node is not one unless
configured so. A client that may not recurse is answered as if it had not
asked (the referral, or "not responsible"), so Handle clients, which set REC
by default, walk the hierarchy themselves. A request that has crossed
``max_hops`` nodes already is refused with RC 6.
"""

from __future__ import annotations

from protocol.codes import RC

from ..settings import UpstreamSettings, address_in, networks
from .caller import Caller
from .errors import Refused


class RecursionPolicy:
    def __init__(self, settings: UpstreamSettings) -> None:
        self.on = settings.recursion
        self.max_hops = settings.max_hops
        self._networks = networks(settings.allow_recursion_from)

    def allows(self, caller: Caller | None, hops: int) -> bool:
        """Whether ``caller`` may have the node recurse (Refused RC 6 when the
        request has crossed too many nodes already)."""
        if not self.on or caller is None or not address_in(caller.source, self._networks):
            return False
        if hops >= self.max_hops:
            raise Refused(RC.RECURSION_COUNT_TOO_HIGH, f"the request has crossed {hops} nodes already")
        return True
