"""The node and its enterprise prefixes: who may see and change them.

The node admin (and the CLI's operator) allocates, lists, enables and
disables prefixes; an enterprise's own admin may read its prefix's record.
Creating a prefix also creates its admin identity ``300:<prefix>/ADMIN``
(``registry.provision``): a key identity when given a public key, else a
secret, the caller's or generated and returned once to the operator (never
over the network). The node admin also adds keys to a prefix's admin
handle and replaces its own secret.
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
                            contact: str = "", password: str | None = None,
                            public_key: str | bytes | None = None) -> tuple[PrefixInfo, str | None]:
        """Allocate ``prefix``; returns its record and the generated secret
        (None when ``password`` or ``public_key`` was given)."""
        prefix = prefix_of(prefix)
        identity = self._node_wide(caller)
        try:
            secret = await provision.create_prefix(self.store, prefix, owner, credit_code=credit_code,
                                                   contact=contact, password=password, public_key=public_key,
                                                   actor=identity.actor)
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

    async def add_prefix_key(self, caller: Caller, prefix: str, public_key: str | bytes,
                             index: int | None = None) -> tuple[int, int]:
        """Add an admin key to ``<prefix>/ADMIN``: ``(key index, HS_ADMIN index)``."""
        prefix = prefix_of(prefix)
        identity = self._node_wide(caller)
        try:
            return await provision.add_public_key(self.store, prefix, public_key, index, actor=identity.actor)
        except RegistryError as exc:
            raise refused(exc) from None

    async def rotate_node_secret(self, caller: Caller, password: str | None = None) -> str | None:
        """Replace the node admin's secret; the generated one, when none was
        given. The old secret is not needed (the CLI's operator recovers a lost one)."""
        identity = self._node_wide(caller)
        try:
            return await provision.rotate_node_secret(self.store, password, actor=identity.actor)
        except RegistryError as exc:
            raise refused(exc) from None
