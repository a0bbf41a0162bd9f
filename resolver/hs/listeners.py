"""Start and stop the TCP and UDP servers of the Handle protocol together.

Both listen on the same port (``handle.port``, 2641 by default); with port 0
the TCP server picks a free port and the UDP server takes the same number,
trying again with another when that number is taken for UDP.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass

from ..connections import Door
from ..metrics import ConnectionMetrics
from ..settings import Settings
from .service import HandleService
from .site import hs_bind
from .tcp import TcpServer
from .udp import UdpServer

PORT_ATTEMPTS = 8


@dataclass(slots=True)
class Listeners:
    tcp: TcpServer
    udp: UdpServer
    port: int

    async def stop(self, timeout: float = 5.0) -> None:
        await asyncio.gather(self.tcp.stop(timeout), self.udp.stop(timeout))


async def start_listeners(service: HandleService, settings: Settings, door: Door, metrics: ConnectionMetrics, *,
                          reuse_port: bool = False) -> Listeners:
    """``door`` admits TCP connections (:mod:`resolver.connections`);
    ``reuse_port``: share the port with other worker processes (SO_REUSEPORT)."""
    host, wanted = hs_bind(settings), settings.handle.port
    loop = asyncio.get_running_loop()
    for attempt in range(PORT_ATTEMPTS if wanted == 0 else 1):
        tcp = TcpServer(service, settings.handle, door, metrics)
        port = await tcp.start(host, wanted, reuse_port=reuse_port)
        udp = UdpServer(service, timeout=settings.handle.udp_timeout)
        try:
            await loop.create_datagram_endpoint(lambda: udp, local_addr=(host, port), reuse_port=reuse_port or None)
        except OSError as exc:
            await tcp.stop()
            if wanted == 0 and exc.errno == errno.EADDRINUSE and attempt + 1 < PORT_ATTEMPTS:
                continue
            raise
        return Listeners(tcp, udp, port)
    raise AssertionError("unreachable")
