"""What flows through the resolution chain: one resolution request, whatever
front end it came from."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.identifier import Handle

from .core.caller import Caller


@dataclass(frozen=True, slots=True)
class Query:
    """``handle`` parsed; ``indexes`` and ``types`` the request's filters
    (empty: every value); ``caller`` who asks (None: anonymous); ``recursion``
    whether the client asked the node to resolve elsewhere for it (Handle REC)
    and ``hops`` how many nodes the request has crossed, for the stages that
    will go upstream."""

    handle: Handle
    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    caller: Caller | None = None
    recursion: bool = False
    hops: int = 0
