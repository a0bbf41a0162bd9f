"""What a live node logs, and raw HTTP/1.1 exchanges with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from resolver.logs import BadRequests

LOGGERS = ("idnode", "aiohttp")


class Records(logging.Handler):
    """Every record of the node's and aiohttp's loggers, as logged."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def bad(self) -> list[str]:
        """Records with a traceback or at ERROR and above, as text."""
        return [f"{r.name} {r.levelname} {r.getMessage()} exc={r.exc_info!r}" for r in self.records
                if r.exc_info or r.levelno >= logging.ERROR]


@contextlib.contextmanager
def capture(level: int, gate: BadRequests):
    """Capture :data:`LOGGERS` at ``level`` with ``gate`` as aiohttp's server
    logger's only filter (as ``logs.configure`` installs it); undo on exit."""
    server = logging.getLogger("aiohttp.server")
    saved_filters = server.filters[:]
    saved_levels = {name: logging.getLogger(name).level for name in LOGGERS}
    handler = Records()
    server.filters[:] = [gate]
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(level)
    try:
        yield handler
    finally:
        server.filters[:] = saved_filters
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(saved_levels[name])


@pytest.fixture
def node_log():
    """The node's log at INFO, bad requests quieted (no rate limit, to see them all)."""
    with capture(logging.INFO, BadRequests(burst=1_000_000)) as records:
        yield records


async def exchange(port: int, data: bytes, *, eof: bool = False) -> bytes:
    """Send ``data`` on a new connection (then half-close it if ``eof``) and
    read until the node closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)     # a safety net, not a timing assertion
    except ConnectionError:
        return b""
    finally:
        writer.close()


def status_of(reply: bytes) -> int | None:
    """The status of the first response in ``reply``; None if there is none."""
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])
