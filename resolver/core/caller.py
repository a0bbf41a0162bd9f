"""Who is asking: an identity (or nobody) and the source it asks from."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.identifier import handle_key
from protocol.values import Reference

NA_PREFIX = "0.NA"
OPERATOR_ACTOR = "cli"


@dataclass(frozen=True, slots=True)
class Identity:
    """A proven ``index:handle``. ``scope`` is the enterprise prefix it
    belongs to (its own prefix must be enabled for it to act), None for the
    node admin; ``operator`` is whoever runs the CLI on the node's own files,
    who may do what the node admin may."""

    handle: str
    index: int
    scope: str | None
    operator: bool = False

    @property
    def actor(self) -> str:
        """The name the audit log records."""
        return OPERATOR_ACTOR if self.operator else f"{self.index}:{self.handle}"

    @property
    def node_wide(self) -> bool:
        """The node admin or the operator: every permission under every prefix."""
        return self.scope is None

    def is_named_by(self, ref: Reference) -> bool:
        """Handle.Net ``ValueReference.isMatchedBy``: index 0 names every index."""
        return handle_key(ref.handle) == handle_key(self.handle) and ref.index in (0, self.index)


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of one request: ``identity`` None is anonymous; ``source``
    is the peer address (what lock-out counts)."""

    identity: Identity | None
    source: str

    @property
    def anonymous(self) -> bool:
        return self.identity is None


OPERATOR = Caller(Identity("", 0, None, operator=True), "local")


def anonymous(source: str) -> Caller:
    return Caller(None, source)


def scope_of(handle: str) -> str:
    """The prefix an identity without an admin row belongs to (``0.NA/X``: ``X``)."""
    prefix, _, suffix = handle.partition("/")
    return suffix if handle_key(prefix) == handle_key(NA_PREFIX) else prefix
