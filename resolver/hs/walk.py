"""Following referrals, as a Handle.Net resolver does: ask a server; when it
answers RC 302 (its prefix is served by another node: an HS_SITE, or an
HS_SERV naming a service whose record holds HS_SITE values), ask the server
that names, and so on, up to :data:`MAX_HOPS` servers and never the same
server twice (a loop). Each server asked is one :class:`Hop`, so the CLI
shows the way (``idnode resolve --hs HOST:PORT --recursive``).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.codes import RC
from protocol.handle import ReferralResponse
from protocol.values import HandleValue
from protocol.valuetypes import Interface, SiteInfo, WireError

from .client import HandleClientError, HandleResponseError, resolve_record

MAX_HOPS = 8


@dataclass(frozen=True, slots=True)
class Hop:
    server: str          # HOST:PORT asked
    code: int            # what it answered
    note: str            # what that meant: "answered", "referred to HOST:PORT by 0.NA/...", an error


class WalkError(HandleClientError):
    """The walk ended without an answer; ``hops`` says how far it got."""

    def __init__(self, message: str, hops: list[Hop], code: int | None = None) -> None:
        super().__init__(message)
        self.hops = hops
        self.code = code


def _server_of(site: SiteInfo, udp: bool) -> str | None:
    """HOST:PORT of the site's first server that takes queries over the transport."""
    want = Interface.UDP if udp else Interface.TCP
    for server in site.servers:
        for i in server.interfaces:
            if i.transport == want and i.type in (Interface.QUERY, Interface.ADMIN_AND_QUERY):
                host = server.address_text
                return f"[{host}]:{i.port}" if ":" in host else f"{host}:{i.port}"
    return None


def _site_server(values: tuple[HandleValue, ...] | None, udp: bool) -> str | None:
    for v in values or ():
        if v.type == "HS_SITE":
            try:
                found = _server_of(SiteInfo.decode(v.data), udp)
            except WireError:
                continue
            if found is not None:
                return found
    return None


async def _referred_to(server: str, body: ReferralResponse, udp: bool, timeout: float) -> str | None:
    """Where a referral points: its HS_SITE, else the HS_SITE of its HS_SERV's service record."""
    found = _site_server(body.values, udp)
    if found is not None:
        return found
    for v in body.values or ():
        if v.type == "HS_SERV":
            try:
                _, service = await resolve_record(server, v.data.decode("utf-8", "replace"), udp=udp,
                                                  timeout=timeout)
            except (HandleClientError, ValueError):
                continue
            found = _site_server(service, udp)
            if found is not None:
                return found
    return None


async def resolve_walking(server: str, handle: str, *, udp: bool = False, timeout: float = 10.0,
                          max_hops: int = MAX_HOPS) -> tuple[str, tuple[HandleValue, ...], list[Hop]]:
    """``handle`` resolved from ``server`` on, following referrals: (its name,
    its values, the servers asked). WalkError when the walk ends without an
    answer: an error code, a referral loop, too many hops, a referral to nowhere."""
    hops: list[Hop] = []
    current = server
    while True:
        if any(h.server == current for h in hops):
            raise WalkError(f"referral loop: {current} was asked already", hops)
        if len(hops) >= max_hops:
            raise WalkError(f"more than {max_hops} servers on the way; giving up", hops)
        try:
            name, values = await resolve_record(current, handle, udp=udp, timeout=timeout)
        except HandleResponseError as exc:
            body = exc.reply.body if exc.reply is not None else None
            if exc.code != RC.SERVICE_REFERRAL or not isinstance(body, ReferralResponse):
                hops.append(Hop(current, exc.code, exc.message or f"response code {exc.code}"))
                raise WalkError(f"{current}: {exc}", hops, exc.code) from None
            following = await _referred_to(current, body, udp, timeout)
            if following is None:
                hops.append(Hop(current, exc.code, f"referred by {body.handle} to no server this client can ask"))
                raise WalkError(f"{current}: a referral ({body.handle}) naming no reachable server", hops,
                                exc.code) from None
            hops.append(Hop(current, exc.code, f"referred to {following} by {body.handle}"))
            current = following
            continue
        except (HandleClientError, ValueError) as exc:
            hops.append(Hop(current, 0, str(exc)))
            raise WalkError(f"{current}: {exc}", hops) from None
        hops.append(Hop(current, RC.SUCCESS, "answered"))
        return name, values, hops
