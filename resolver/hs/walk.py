"""Following referrals, as a Handle.Net resolver does: ask a server; when it
answers RC 302 or 303 (its prefix is served by another node: an HS_SITE, or
an HS_SERV naming a service whose record holds HS_SITE values), ask a server
of the site that names, and so on, up to ``max_hops`` servers and never the
same server twice (a loop). A server that cannot be talked to (refused,
timed out, garbled) is retried once on another server of the same site.

One walk for every user of it: the CLI (``idnode resolve --hs HOST:PORT
--recursive``, through :func:`resolve_walking`, showing each :class:`Hop`)
and the node's own recursion (``resolver.stages.upstream``), which
subclasses :class:`Walk` to ask through its breakers, deadline and metrics
and to keep the prefix sites referrals name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from protocol.codes import RC
from protocol.handle import ReferralResponse
from protocol.values import HandleValue
from protocol.valuetypes import Interface, SiteInfo, WireError

from .client import (HandleClientError, HandleMalformedReply, HandleResponseError, HandleTimeout,
                     resolve_record)

MAX_HOPS = 8
REFERRALS = (RC.SERVICE_REFERRAL, RC.PREFIX_REFERRAL)

# Why a walk ended without an answer (WalkError.kind).
ANSWERED = "answered"          # a server answered an error code (``code``): not found, not responsible ...
LOOP = "loop"                  # a referral back to a server asked already
TOO_FAR = "too_far"            # more than max_hops servers
NOWHERE = "nowhere"            # a referral naming no server this client can ask
MALFORMED = "malformed"        # a server answered garbage
TIMEOUT = "timeout"            # a server did not answer in time
UNREACHABLE = "unreachable"    # a server could not be talked to


@dataclass(frozen=True, slots=True)
class Hop:
    server: str          # HOST:PORT asked
    code: int            # what it answered (0: nothing usable)
    note: str            # what that meant: "answered", "referred to HOST:PORT by 0.NA/...", an error


class WalkError(HandleClientError):
    """The walk ended without an answer; ``hops`` says how far it got,
    ``kind`` why (the constants above), ``code`` the last server's response
    code when it answered one."""

    def __init__(self, message: str, hops: list[Hop], code: int | None = None, kind: str = ANSWERED) -> None:
        super().__init__(message)
        self.hops = hops
        self.code = code
        self.kind = kind


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def site_servers(site: SiteInfo, udp: bool) -> list[str]:
    """HOST:PORT of each server of the site that takes queries over the transport, in the site's order."""
    want = Interface.UDP if udp else Interface.TCP
    out = []
    for server in site.servers:
        port = next((i.port for i in server.interfaces
                     if i.transport == want and i.type in (Interface.QUERY, Interface.ADMIN_AND_QUERY)), None)
        if port is not None:
            out.append(_address(server.address_text, port))
    return out


def servers_of(values: Sequence[HandleValue] | None, udp: bool) -> list[str]:
    """The servers of every well-formed HS_SITE among ``values``."""
    out: list[str] = []
    for v in values or ():
        if v.type == "HS_SITE":
            try:
                out += [s for s in site_servers(SiteInfo.decode(v.data), udp) if s not in out]
            except WireError:
                continue
    return out


def failure_kind(exc: Exception) -> str:
    """Why talking to a server failed: MALFORMED, TIMEOUT or UNREACHABLE."""
    if isinstance(exc, HandleMalformedReply):
        return MALFORMED
    if isinstance(exc, HandleTimeout):
        return TIMEOUT
    return UNREACHABLE


class Walk:
    """One walk for ``handle``. :meth:`ask` asks one server (a subclass adds
    its own limits); :meth:`referred` hears of every referral followed."""

    def __init__(self, handle: str, *, udp: bool = False, timeout: float = 10.0, max_hops: int = MAX_HOPS) -> None:
        self.handle = handle
        self.udp = udp
        self.timeout = timeout
        self.max_hops = max_hops
        self.hops: list[Hop] = []

    async def ask(self, server: str, handle: str, site: tuple[str, ...]) -> tuple[str, tuple[HandleValue, ...]]:
        """``handle`` at ``server`` (one of ``site``): (its name, its values),
        asked with REC cleared: the walk follows the referrals itself."""
        return await resolve_record(server, handle, udp=self.udp, timeout=self.timeout, recursive=False)

    def referred(self, body: ReferralResponse, servers: list[str]) -> None:
        """A referral was followed to ``servers``."""

    async def run(self, servers: Sequence[str]) -> tuple[str, tuple[HandleValue, ...], list[Hop]]:
        """Ask from ``servers`` (one site) on: (the name, its values, the
        hops). WalkError when the walk ends without an answer."""
        site = tuple(servers)
        asked: set[str] = set()
        while True:
            fresh = [s for s in site if s not in asked]
            if not fresh:
                raise WalkError(f"referral loop: {', '.join(site)} was asked already", self.hops, kind=LOOP)
            failure: Exception | None = None
            for server in fresh[:2]:                 # one retry on another server of the same site
                if len(self.hops) >= self.max_hops:
                    raise WalkError(f"more than {self.max_hops} servers on the way; giving up", self.hops,
                                    kind=TOO_FAR)
                asked.add(server)
                try:
                    name, values = await self.ask(server, self.handle, site)
                except HandleResponseError as exc:
                    site = await self._referral(server, site, exc)
                    failure = None
                    break
                except (HandleClientError, ValueError) as exc:
                    self.hops.append(Hop(server, 0, str(exc)))
                    failure = exc
                    continue
                self.hops.append(Hop(server, RC.SUCCESS, "answered"))
                return name, values, self.hops
            if failure is not None:
                raise WalkError(f"{self.hops[-1].server}: {failure}", self.hops, kind=failure_kind(failure))

    async def _referral(self, server: str, site: tuple[str, ...], exc: HandleResponseError) -> tuple[str, ...]:
        """The site a referral answer points to; WalkError for any other answer."""
        body = exc.reply.body if exc.reply is not None else None
        if exc.code not in REFERRALS or not isinstance(body, ReferralResponse):
            self.hops.append(Hop(server, exc.code, exc.message or f"response code {exc.code}"))
            raise WalkError(f"{server}: {exc}", self.hops, exc.code) from None
        following = servers_of(body.values, self.udp) or await self._service(server, site, body)
        if not following:
            self.hops.append(Hop(server, exc.code, f"referred by {body.handle} to no server this client can ask"))
            raise WalkError(f"{server}: a referral ({body.handle}) naming no reachable server", self.hops,
                            exc.code, kind=NOWHERE) from None
        self.hops.append(Hop(server, exc.code, f"referred to {following[0]} by {body.handle}"))
        self.referred(body, following)
        return tuple(following)

    async def _service(self, server: str, site: tuple[str, ...], body: ReferralResponse) -> list[str]:
        """The servers of the service records a referral's HS_SERV values name, asked at ``server``."""
        for v in body.values or ():
            if v.type == "HS_SERV":
                try:
                    _, service = await self.ask(server, v.data.decode("utf-8", "replace"), site)
                except (HandleClientError, ValueError):
                    continue
                found = servers_of(service, self.udp)
                if found:
                    return found
        return []


async def resolve_walking(server: str, handle: str, *, udp: bool = False, timeout: float = 10.0,
                          max_hops: int = MAX_HOPS) -> tuple[str, tuple[HandleValue, ...], list[Hop]]:
    """``handle`` resolved from ``server`` on, following referrals: (its name,
    its values, the servers asked). WalkError when the walk ends without an
    answer: an error code, a referral loop, too many hops, a referral to nowhere."""
    return await Walk(handle, udp=udp, timeout=timeout, max_hops=max_hops).run([server])
