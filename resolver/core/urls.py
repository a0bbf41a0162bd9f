"""URL values a node sends people to: only absolute http(s) URLs.

``idnode register --url`` refuses anything else, and the proxy redirect
(``GET /{handle}``) goes only to the first readable URL value that is one,
so ``javascript:``, ``data:`` or relative targets never reach a browser.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import urlsplit

from protocol.values import HandleValue

_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\\]")


def is_web_url(text: str) -> bool:
    """An absolute ``http``/``https`` URL with a host, no spaces or control characters."""
    if not isinstance(text, str) or not text or _UNSAFE.search(text):
        return False
    try:
        parts = urlsplit(text)
        parts.port                      # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def redirect_target(values: Iterable[HandleValue]) -> str | None:
    """The first value whose data is a web URL (the values as a view gives them)."""
    for v in values:
        try:
            text = v.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if is_web_url(text):
            return text
    return None
