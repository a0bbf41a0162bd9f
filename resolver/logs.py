"""Logging to stderr, one line per event; JSON lines with ``--log-format json``.

A request aiohttp itself refuses (a bad request line or header, a body its
decoder cannot read) is the client's mistake, cheap to repeat: it is logged
as one warning line without a traceback, and only so many a minute
(:class:`BadRequests`).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Callable

import orjson
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web import RequestPayloadError

from .errors import short_text

_CLIENT_ERRORS = (HttpProcessingError, RequestPayloadError)

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STD}
        if extra:
            line += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return line.replace("\n", "\\n")


class BadRequests(logging.Filter):
    """On aiohttp's server logger: its record of a client error (parser or payload)
    becomes ``bad HTTP request from <peer>: <the error on one line>``, a warning
    (aiohttp's DEBUG for a first line that is not HTTP at all stays DEBUG)
    without a traceback, at most ``burst`` per ``interval`` seconds; the first
    one after that is preceded by one line counting those left out. Other
    records pass untouched, so a genuine failure keeps its traceback."""

    def __init__(self, burst: int = 10, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.interval, self._clock = burst, interval, clock
        self._since = -math.inf
        self._count = self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, _CLIENT_ERRORS):
            return True
        now = self._clock()
        if now - self._since >= self.interval:
            if self._suppressed:
                logging.getLogger(record.name).warning(
                    "suppressed %d similar bad HTTP requests (at most %d are logged per %.0f s)",
                    self._suppressed, self.burst, self.interval)
            self._since, self._count, self._suppressed = now, 0, 0
        self._count += 1
        if self._count > self.burst:
            self._suppressed += 1
            return False
        # aiohttp names the peer in its parser errors ("... from %s"), not in payload ones.
        args = record.args if isinstance(record.args, tuple) else ()
        record.msg = "bad HTTP request from %s: %s"
        record.args = (args[0] if len(args) == 1 else "-", short_text(exc))
        record.exc_info = record.exc_text = None
        if record.levelno > logging.WARNING:         # aiohttp's DEBUG for non-HTTP traffic stays
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure(fmt: str = "text", level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequests) for f in server.filters):     # configured more than once
        server.addFilter(BadRequests())
