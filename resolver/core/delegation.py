"""Delegation: an enterprise prefix served by the enterprise's own Handle
server (``registry.provision`` keeps it in the prefix record ``0.NA/<prefix>``).

Only the node admin (and the CLI's operator) delegates. A site is given as
``HOST:PORT``, HOST an IPv4 or IPv6 address (``[::1]:2641``): the HS_SITE
is one primary server taking queries and administration over TCP and
queries over UDP at that port, as a Handle.Net server is set up. A service
is given as the handle of its HS_SERV target (``0.NA/88.118.8`` style).
"""

from __future__ import annotations

import ipaddress

from protocol.codes import RC
from protocol.handle import MAX_VERSION
from protocol.identifier import InvalidHandle, parse_handle
from protocol.values import HandleValue
from protocol.valuetypes import Interface, ServerInfo, SiteInfo
from registry import provision
from registry.errors import RegistryError

from .caller import Caller
from .errors import Refused, refused
from .prefixes import prefix_of


def site_of(text: str) -> SiteInfo:
    """The HS_SITE of the one server at ``HOST:PORT`` (Refused RC 202 when it is not one)."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise Refused(RC.INVALID_VALUE, f"a site is HOST:PORT with HOST an IP address, got {text!r}") from None
    if not sep or not 0 < number < 65536:
        raise Refused(RC.INVALID_VALUE, f"a site's port is 1..65535, got {text!r}")
    address = bytes(12) + ip.packed if ip.version == 4 else ip.packed
    server = ServerInfo(1, address, b"", (Interface(Interface.ADMIN_AND_QUERY, Interface.TCP, number),
                                          Interface(Interface.QUERY, Interface.UDP, number)))
    return SiteInfo(servers=(server,), serial=1, primary_mask=SiteInfo.PRIMARY, hash_option=SiteInfo.HASH_BY_ALL,
                    major=MAX_VERSION[0], minor=MAX_VERSION[1])


def site_text(site: SiteInfo) -> str:
    """``HOST:PORT`` of a site's first server and its first TCP (else any) interface."""
    server = site.servers[0]
    ports = [i.port for i in server.interfaces if i.transport == Interface.TCP] or \
        [i.port for i in server.interfaces]
    host = server.address_text
    return f"[{host}]:{ports[0]}" if ":" in host else f"{host}:{ports[0] if ports else 0}"


def describe(value: HandleValue | None) -> dict | None:
    """A delegation as front ends show it: ``{"site": "HOST:PORT"}`` or ``{"service": HANDLE}``."""
    if value is None:
        return None
    if value.type == "HS_SERV":
        return {"service": value.data.decode("utf-8", "replace")}
    try:
        return {"site": site_text(SiteInfo.decode(value.data))}
    except (ValueError, IndexError):
        return {"site": "(undecodable HS_SITE)"}


class Delegation:
    """Mixed into :class:`resolver.core.Core`."""

    async def delegate_prefix(self, caller: Caller, prefix: str, *, site: str | None = None,
                              service: str | None = None) -> dict:
        """Point ``prefix`` at a site or a service; what it now points at (:func:`describe`)."""
        prefix = prefix_of(prefix)
        identity = self._node_wide(caller)
        if (site is None) == (service is None):
            raise Refused(RC.INVALID_VALUE, "give a site (HOST:PORT) or a service handle, one of them")
        if site is not None:
            where = HandleValue(provision.SITE_INDEX, "HS_SITE", site_of(site).encode())
        else:
            try:
                target = parse_handle(service.strip())
            except InvalidHandle as exc:
                raise Refused(RC.INVALID_HANDLE, f"service handle: {exc}") from None
            where = HandleValue(provision.SERV_INDEX, "HS_SERV", target.text.encode("utf-8"))
        try:
            await provision.delegate_prefix(self.store, prefix, where, actor=identity.actor)
        except RegistryError as exc:
            raise refused(exc) from None
        return describe(where)

    async def undelegate_prefix(self, caller: Caller, prefix: str) -> None:
        """Serve ``prefix`` here again."""
        prefix = prefix_of(prefix)
        identity = self._node_wide(caller)
        await self._info(prefix)                     # RC 100 for a prefix not allocated here
        try:
            await provision.undelegate_prefix(self.store, prefix, actor=identity.actor)
        except RegistryError as exc:
            raise refused(exc) from None

    async def delegation(self, caller: Caller, prefix: str) -> dict | None:
        """Where ``prefix`` is delegated (:func:`describe`), for whoever may see the prefix."""
        info = await self.show_prefix(caller, prefix)
        try:
            return describe(await provision.delegation_of(self.store, info.prefix))
        except RegistryError as exc:
            raise refused(exc) from None

    async def unpublished(self, caller: Caller) -> list:
        """The prefixes whose record the top-level node has yet to be told
        (``registry.outbox.Pending``), oldest change first; the node admin's to see."""
        self._node_wide(caller)
        try:
            pending = await self.store.outbox()
        except RegistryError as exc:
            raise refused(exc) from None
        return sorted(pending.values(), key=lambda p: p.since)

    async def republish(self, caller: Caller) -> int:
        """Mark every prefix allocated here to be published again; how many."""
        self._node_wide(caller)
        try:
            return await self.store.outbox_mark_all()
        except RegistryError as exc:
            raise refused(exc) from None
