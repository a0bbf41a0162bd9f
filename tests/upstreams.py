"""A Handle server the test controls, on 127.0.0.1 port 0 over TCP: it
answers every resolution the way ``mode`` says (a good answer, a referral,
not found, garbage, a lying length, slowly, never), and counts what it got.
It plays another node the node under test asks."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from protocol.codes import RC
from protocol.handle import (ENVELOPE_SIZE, Envelope, ErrorResponse, ReferralResponse, ResolutionResponse, decode,
                             encode, make_reply)
from protocol.values import HandleValue
from resolver.core.delegation import site_of

MODES = ("answer", "not_found", "refer", "garbage", "long_length", "short_length", "slow", "silent")


def site_value(port: int) -> HandleValue:
    """An HS_SITE naming one server at 127.0.0.1:``port``."""
    return HandleValue(1, "HS_SITE", site_of(f"127.0.0.1:{port}").encode())


@dataclass
class Upstream:
    mode: str = "answer"
    values: tuple[HandleValue, ...] = (HandleValue(1, "URL", b"https://upstream.example/x", ttl=3600),)
    refer_to: int = 0                        # "refer": the port of the site it refers to
    referral: str = "0.NA/88.118.9"          # ... by this prefix record
    port: int = 0
    requests: list = field(default_factory=list)     # (handle, opFlags, recursion count) of each request
    _server: asyncio.AbstractServer | None = None
    _held: list = field(default_factory=list)

    async def start(self) -> "Upstream":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer in self._held:
            writer.close()
        self._server.close()
        await self._server.wait_closed()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._held.append(writer)
        try:
            while True:
                head = await reader.readexactly(ENVELOPE_SIZE)
                request = decode(head + await reader.readexactly(Envelope.from_bytes(head).message_length))
                self.requests.append((request.body.handle, int(request.op_flags), request.header.recursion_count))
                reply = self._reply(request)
                if self.mode == "slow":
                    await asyncio.sleep(30)
                if self.mode == "silent":
                    await asyncio.sleep(3600)
                writer.write(reply)
                await writer.drain()
                if self.mode in ("garbage", "short_length"):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def _reply(self, request) -> bytes:
        now = int(time.time())
        if self.mode == "garbage":
            return os.urandom(7) + b"\xff" * 40
        if self.mode == "not_found":
            return encode(make_reply(request, ErrorResponse("handle not found"), now=now,
                                     response_code=RC.HANDLE_NOT_FOUND))
        if self.mode == "refer":
            return encode(make_reply(request, ReferralResponse(self.referral, (site_value(self.refer_to),)), now=now))
        wire = encode(make_reply(request, ResolutionResponse(request.body.handle, self.values), now=now))
        if self.mode == "long_length":       # the envelope claims more than any reply may be
            return wire[:16] + (100 * 1024 * 1024).to_bytes(4, "big") + wire[20:]
        if self.mode == "short_length":      # ... or more than it sends, and the connection ends
            return wire[:16] + (len(wire) + 1000 - ENVELOPE_SIZE).to_bytes(4, "big") + wire[20:]
        return wire
