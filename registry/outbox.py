"""The outbox: prefixes whose record the top-level node has yet to be told.

Every write that changes what a prefix allocated here means to the rest of
the hierarchy (its creation, its state, its prefix record ``0.NA/<prefix>``:
a delegation) marks the prefix in the same transaction, so no change is
lost, whatever happens to the node or the top-level node after it is
acknowledged. The publisher (``resolver.stages.upstream.publish``) sends
each marked prefix's current record and settles the mark only if no newer
change came meanwhile: the top-level node always ends with the latest state
of each prefix, in the order its changes were made. One entry per prefix,
so the outbox never holds more entries than the node has prefixes.

The outbox is one meta entry (the same on every backend): a CBOR map from a
prefix's key to its :class:`Pending`. One publisher works it at a time,
among every process of every node on the store: the holder of the lease
(:func:`take_lease`), so an older state can never overtake a newer one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import cbor2

from .backend import Tx

META = "outbox"
LEASE = "outbox.lease"


@dataclass(frozen=True, slots=True)
class Pending:
    prefix: str               # as allocated
    version: int              # raised by every change of the prefix
    since: float              # when the oldest unpublished change was made (unix seconds)
    tries: int = 0            # attempts that failed since
    error: str = ""           # the last failure
    due: float = 0.0          # not tried again before this (unix seconds)


def read(raw: object) -> dict[str, Pending]:
    """The outbox from its stored form."""
    if not raw:
        return {}
    return {key: Pending(**item) for key, item in cbor2.loads(raw).items()}


def _write(tx: Tx, pending: dict[str, Pending]) -> None:
    tx.set_meta(META, cbor2.dumps({key: asdict(item) for key, item in pending.items()}))


def allocated(tx: Tx, prefix_keys: Iterable[str]) -> dict[str, str]:
    """Of ``prefix_keys``, those allocated here (committed before ``tx``: a
    backend's transaction need not read its own writes), with their names."""
    out = {}
    for key in dict.fromkeys(prefix_keys):
        info = tx.prefix(key)
        if info is not None:
            out[key] = info.prefix
    return out


def mark(tx: Tx, prefixes: dict[str, str]) -> None:
    """Mark ``prefixes`` (key -> name, each allocated here)."""
    if not prefixes:
        return
    pending = read(tx.meta(META))
    for key, prefix in prefixes.items():
        old = pending.get(key)
        pending[key] = Pending(prefix, (old.version if old else 0) + 1, old.since if old else tx.now)
    _write(tx, pending)


def settle(tx: Tx, key: str, version: int) -> bool:
    """The prefix's record at ``version`` was published: unmark it unless it changed since."""
    pending = read(tx.meta(META))
    item = pending.get(key)
    if item is None or item.version != version:
        return False
    del pending[key]
    _write(tx, pending)
    return True


def failed(tx: Tx, key: str, version: int, error: str, due: float) -> None:
    """Publishing the prefix's record at ``version`` failed: try again from ``due``."""
    pending = read(tx.meta(META))
    item = pending.get(key)
    if item is None or item.version != version:
        return
    pending[key] = Pending(item.prefix, item.version, item.since, item.tries + 1, error[:300], due)
    _write(tx, pending)


def lease_of(raw: object) -> tuple[str, float] | None:
    """(holder, until) of the publisher's lease from its stored form."""
    if not raw:
        return None
    held = cbor2.loads(raw)
    return held["owner"], held["until"]


def take_lease(tx: Tx, owner: str, seconds: float) -> float:
    """Take or renew the publisher's lease for ``owner`` unless another holds
    it unexpired; until when ``owner`` holds it (0: it does not)."""
    held = lease_of(tx.meta(LEASE))
    if held is not None and held[0] != owner and held[1] > tx.now:
        return 0.0
    until = tx.now + seconds
    tx.set_meta(LEASE, cbor2.dumps({"owner": owner, "until": until}))
    return until
