"""Requests aiohttp's own parser refuses: the client gets aiohttp's 400, the log
one line each without a traceback, and only so many per interval."""

from __future__ import annotations

import asyncio
import logging

import pytest

from resolver.logs import BadRequests
from tests.conftest import provision_node
from tests.processes import serving_workers

from .conftest import capture, exchange, status_of

BAD = [
    b"GET / HTTP/1.1\r\nBad Name\x01: a\r\n\r\n",                           # invalid header name
    b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",             # a header line over the limit
    b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",                                  # a bad request target
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",            # a bad chunk size
    b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",     # two lengths
    b"GET / HTTP/9.9\r\n\r\n",                                                # an unknown version
]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines(records) -> list[str]:
    return [r.getMessage() for r in records.records if r.name == "aiohttp.server"]


async def test_one_line_each_then_a_count_of_those_left_out(live):
    clock = Clock()
    with capture(logging.INFO, BadRequests(burst=3, interval=60.0, clock=clock)) as records:
        port = live.running.http_port
        for data in BAD + BAD:
            assert status_of(await exchange(port, data)) == 400
        assert not records.bad()
        logged = lines(records)
        assert len(logged) == 3
        assert all(line.startswith("bad HTTP request from 127.0.0.1: ") for line in logged)
        assert "Invalid header token" in logged[0] and "8190" in logged[1]
        assert all(r.levelno == logging.WARNING for r in records.records)
        clock.now += 60.0
        assert status_of(await exchange(port, BAD[0])) == 400
        assert lines(records)[3:] == ["suppressed 9 similar bad HTTP requests (at most 3 are logged per 60 s)",
                                      logged[0]]
        assert not records.bad()


async def test_garbage_first_is_aiohttp_debug_noise(live):
    """aiohttp logs a first request that is not HTTP at all (TLS, a port scan) at
    DEBUG on purpose: nothing at INFO, one plain line at DEBUG."""
    for level, expected in [(logging.INFO, 0), (logging.DEBUG, 1)]:
        with capture(level, BadRequests()) as records:
            assert status_of(await exchange(live.running.http_port, b"GARBAGE\r\n\r\n")) == 400
            assert len(lines(records)) == expected and not records.bad()
            assert all(r.levelno == logging.DEBUG for r in records.records)


def test_a_serving_node_logs_bad_requests_once_each_and_bounded(settings):
    """``idnode serve`` (logs.configure): JSON lines, no traceback, at most 10 a minute
    (in each worker: one here)."""
    asyncio.run(provision_node(settings))
    with serving_workers(settings.node.home, 1) as node:
        async def attack():
            for data in BAD * 4:
                assert status_of(await exchange(node.http_port, data)) == 400
        asyncio.run(attack())
    rest = node.logs.seen
    assert not [line for line in rest if "Traceback" in line or '"exc"' in line]
    bad = [line for line in rest if '"bad HTTP request from 127.0.0.1: ' in line]
    assert len(bad) == 10 and all('"logger":"aiohttp.server"' in line and '"level":"warning"' in line for line in bad)


@pytest.fixture(autouse=True)
def _no_stray_filters():
    """Whatever a test installs on aiohttp's logger is gone after it."""
    before = logging.getLogger("aiohttp.server").filters[:]
    yield
    assert logging.getLogger("aiohttp.server").filters == before
