"""The HTTP listener's connections: counted, refused past a limit, timed.

aiohttp's own knobs give the keep-alive idle timeout (``keepalive_timeout``:
from the end of a response, and from the accept, until a whole request head,
else the connection closes) and bound a request head (line and header sizes);
aiohttp has no header, body or send timeout, so :class:`Connection`, its
request handler with these added, does:

* **header**: a connection that has not sent its first whole request head
  ``header_timeout`` seconds after the accept is closed (the heads of later
  requests are bounded by ``keepalive_timeout``);
* **body**: a request whose body is not all there ``body_timeout`` seconds
  after its handler starts reading it is answered 408 in the API's error
  shape and the connection closed after it (the one body reader,
  :mod:`resolver.bodies`, times the read and calls :meth:`Connection.body_late`;
  a body no handler reads is drained by aiohttp after the answer, at most
  its ``lingering_time``, 10 s);
* **send**: a client that takes none of its response for ``send_timeout``
  seconds once the transport's buffer is full is cut off (:class:`Stall`).

Connections past the :class:`~resolver.connections.Door` (per source, in
total, the file-descriptor reserve) get a 503 in the API's error shape and
are closed at once, before aiohttp sees them. The work is per connection,
none per request.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from protocol.codes import RC

from .connections import Door, Stall
from .metrics import ConnectionMetrics
from .settings import HttpSettings


def _busy(message: str) -> bytes:
    body = orjson.dumps({"responseCode": int(RC.SERVER_BUSY), "handle": None, "message": message})
    head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
    return head.encode() + body


BUSY = _busy("too many connections; try again later")


class HttpLimits:
    """What every connection of one listener shares: the door, the timeouts,
    the metric children, aiohttp's server (the manager of the handlers)."""

    def __init__(self, server: web.Server, door: Door, settings: HttpSettings, metrics: ConnectionMetrics):
        self.server = server
        self.door = door
        self.header_timeout = settings.header_timeout
        self.keepalive_timeout = settings.keepalive_timeout
        self.send_timeout = settings.send_timeout
        self.cut = metrics.cuts("http", "header_timeout", "body_timeout", "send_timeout")

    def __call__(self) -> "Connection":
        """The protocol factory of the listening socket."""
        return Connection(self)


class Connection(RequestHandler):
    """aiohttp's request handler with the door and the timeouts (module docstring)."""

    __slots__ = ("_limits", "_source", "_head_timer", "_stall")

    def __init__(self, limits: HttpLimits):
        # auto_decompress off: a Content-Encoding is refused (415, resolver.bodies), never inflated.
        super().__init__(limits.server, loop=asyncio.get_running_loop(), keepalive_timeout=limits.keepalive_timeout,
                         access_log=None, auto_decompress=False)
        self._limits = limits
        self._source: str | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._stall: Stall | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limits = self._limits
        peer = transport.get_extra_info("peername")
        self._source = limits.door.admit(str(peer[0]) if peer else "?")
        if self._source is None:
            transport.write(BUSY)          # type: ignore[attr-defined]
            transport.close()
            return
        super().connection_made(transport)
        self._head_timer = self._loop.call_later(limits.header_timeout, self._head_late)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._source is None:           # refused at the door: aiohttp never saw it
            return
        self._limits.door.release(self._source)
        self._source = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._stall is not None:
            self._stall.stop()
        super().connection_lost(exc)

    # -- header --------------------------------------------------------------------------------
    def _head_late(self) -> None:
        self._head_timer = None
        if self._request_count == 0 and self.transport is not None:
            self._limits.cut["header_timeout"].inc()
            self.force_close()

    # -- body ----------------------------------------------------------------------------------
    def body_late(self) -> None:
        """Count a request whose body did not arrive in time (its reader answers
        408 and drops the rest: :meth:`drop_unread_body`)."""
        self._limits.cut["body_timeout"].inc()

    def drop_unread_body(self) -> None:
        """Close after the current answer instead of reading what is left of
        its request's body (aiohttp lingers up to 10 s for it otherwise)."""
        self._lingering_time = 0.0

    # -- send ----------------------------------------------------------------------------------
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None:
            self._stall = Stall(self.transport, self._limits.send_timeout, self._limits.cut["send_timeout"])
        self._stall.start()

    def resume_writing(self) -> None:
        if self._stall is not None:
            self._stall.stop()
        super().resume_writing()


class HttpSite(web.BaseSite):
    """The HTTP listening socket, its connections made by :class:`HttpLimits`."""

    __slots__ = ("_factory", "_host", "_port", "_reuse_port")

    def __init__(self, runner: web.BaseRunner, factory: HttpLimits, host: str, port: int, *, reuse_port: bool):
        super().__init__(runner)
        self._factory = factory
        self._host = host
        self._port = port
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The port bound (once started; ``port`` 0 picks a free one)."""
        return self._server.sockets[0].getsockname()[1] if self._server is not None else self._port

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self._factory, self._host, self._port, backlog=self._backlog, reuse_address=True,
            reuse_port=self._reuse_port or None)
