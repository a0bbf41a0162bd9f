"""The node and its enterprise prefixes: who may see and change them.

The node admin (and the CLI's operator) allocates, lists, enables and
disables prefixes; an enterprise's own admin may read its prefix's record.
Creating a prefix also creates its admin identity ``300:<prefix>/ADMIN``
(``registry.provision``): the secret is the caller's, or generated and
returned once to the operator (never over the network).
"""

from __future__ import annotations

from protocol.codes import RC
from protocol.identifier import InvalidHandle, handle_key, parse_prefix
from registry import provision
from registry.errors import RegistryError
from registry.model import DISABLED, ENABLED, PrefixInfo

from .caller import Caller, Identity
from .errors import Refused, refused


def prefix_of(text: str) -> str:
    try:
        return parse_prefix(text)
    except InvalidHandle as exc:
        raise Refused(RC.INVALID_HANDLE, str(exc)) from None


class Prefixes:
    """Mixed into :class:`resolver.core.Core`."""

    def _node_wide(self, caller: Caller) -> Identity:
        identity = self.require_identity(caller)
        if not identity.node_wide:
            raise Refused(RC.NOT_AN_ADMIN, f"{identity.actor} is not the node admin")
        return identity

    async def _info(self, prefix: str) -> PrefixInfo:
        try:
            info = await self.store.get_prefix(prefix)
        except RegistryError as exc:
            raise refused(exc) from None
        if info is None:
            raise Refused(RC.HANDLE_NOT_FOUND, f"prefix {prefix} is not allocated on this node")
        return info

    async def list_prefixes(self, caller: Caller) -> list[PrefixInfo]:
        self._node_wide(caller)
        return await self.store.list_prefixes()

    async def show_prefix(self, caller: Caller, prefix: str) -> PrefixInfo:
        prefix = prefix_of(prefix)
        identity = self.require_identity(caller)
        if not identity.node_wide and handle_key(identity.scope) != handle_key(prefix):
            raise Refused(RC.NOT_AN_ADMIN, f"{identity.actor} is not an admin of prefix {prefix}")
        return await self._info(prefix)

    async def create_prefix(self, caller: Caller, prefix: str, owner: str, *, credit_code: str = "",
                            contact: str = "", password: str | None = None) -> tuple[PrefixInfo, str | None]:
        """Allocate ``prefix``; returns its record and the generated secret
        (None when ``password`` was given)."""
        prefix = prefix_of(prefix)
        identity = self._node_wide(caller)
        try:
            secret = await provision.create_prefix(self.store, prefix, owner, credit_code=credit_code,
                                                   contact=contact, password=password, actor=identity.actor)
        except RegistryError as exc:
            raise refused(exc) from None
        return await self._info(prefix), secret

    async def set_prefix_state(self, caller: Caller, prefix: str, enabled: bool) -> PrefixInfo:
        """Enable or disable ``prefix``: a disabled prefix's identifiers are served
        by no front end and take no writes; its identities cannot act."""
        prefix = prefix_of(prefix)
        identity = self._node_wide(caller)
        try:
            return await self.store.set_prefix_state(prefix, ENABLED if enabled else DISABLED,
                                                     actor=identity.actor)
        except RegistryError as exc:
            raise refused(exc) from None

    async def rotate_prefix_secret(self, caller: Caller, prefix: str, password: str | None = None) -> str | None:
        """Replace the secret of ``300:<prefix>/ADMIN``; the generated one, when none was given."""
        prefix = prefix_of(prefix)
        identity = self._node_wide(caller)
        try:
            return await provision.rotate_prefix_secret(self.store, prefix, password, actor=identity.actor)
        except RegistryError as exc:
            raise refused(exc) from None
