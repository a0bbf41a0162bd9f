"""This node's HS_SITE record, the answer to get site info (opCode 2).

One server (id 1) at the advertised address, with the ports actually bound:
TCP and HTTP for queries and administration, UDP for queries (as a
Handle.Net site is set up), and the server key's public half, with which
Handle.Net clients check a signed reply (:mod:`resolver.serverkey`).
"""

from __future__ import annotations

import ipaddress

from protocol.handle import MAX_VERSION
from protocol.valuetypes import Interface, ServerInfo, SiteInfo

from ..settings import Settings, SettingsError

_WILDCARDS = {"", "0.0.0.0", "::"}


def hs_bind(settings: Settings) -> str:
    """The address the TCP and UDP servers listen on."""
    return settings.handle.bind or settings.http.bind


def advertised_address(settings: Settings) -> bytes:
    """The 16-byte server address: IPv4 zero-padded, as Handle.Net writes it."""
    text = settings.handle.address or hs_bind(settings)
    if text in _WILDCARDS:
        text = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise SettingsError(f"handle.address must be an IP address, got {text!r}") from None
    return bytes(12) + ip.packed if ip.version == 4 else ip.packed


def site_info(settings: Settings, *, tcp_port: int, udp_port: int, http_port: int,
              public_key: bytes = b"") -> SiteInfo:
    if not 0 <= settings.handle.site_serial <= 0xFFFF:
        raise SettingsError("handle.site_serial must be 0..65535")
    interfaces = (Interface(Interface.ADMIN_AND_QUERY, Interface.TCP, tcp_port),
                  Interface(Interface.QUERY, Interface.UDP, udp_port),
                  Interface(Interface.ADMIN_AND_QUERY, Interface.HTTP, http_port))
    server = ServerInfo(1, advertised_address(settings), public_key, interfaces)
    return SiteInfo(servers=(server,), attributes=(("desc", f"idnode {settings.node.secondary_prefix}"),),
                    serial=settings.handle.site_serial, primary_mask=SiteInfo.PRIMARY,
                    hash_option=SiteInfo.HASH_BY_ALL, major=MAX_VERSION[0], minor=MAX_VERSION[1])
