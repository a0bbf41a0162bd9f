"""Identifiers: ``prefix/suffix`` parsing, normalisation and comparison keys.

Rules (RFC 3650 section 3, Handle.Net server defaults):

* text is UTF-8, normalised to NFC; at most 255 bytes once encoded;
* the first ``/`` separates the prefix from the suffix; both are non-empty;
* the prefix is dot-separated segments, none empty (``88.118.8``, ``0.NA``);
* control characters are refused;
* comparison is ASCII case-insensitive (``88.118.8/ABC`` == ``88.118.8/abc``),
  the identifier is kept as registered.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

MAX_HANDLE_BYTES = 255


class InvalidHandle(ValueError):
    """The text is not a well-formed identifier (Handle RC 102)."""


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def handle_key(text: str) -> str:
    """Comparison key of an already valid identifier: ASCII letters folded."""
    if text.isascii():
        return text.lower()
    return "".join(c.lower() if c.isascii() else c for c in text)


def parse_prefix(text: str) -> str:
    """Validate and NFC-normalise an enterprise or secondary prefix."""
    if not isinstance(text, str):
        raise InvalidHandle("prefix must be text")
    text = unicodedata.normalize("NFC", text.strip())
    if not text or "/" in text or _has_control(text) or " " in text:
        raise InvalidHandle(f"invalid prefix: {text!r}")
    if any(seg == "" for seg in text.split(".")):
        raise InvalidHandle(f"invalid prefix (empty segment): {text!r}")
    if len(text.encode()) > MAX_HANDLE_BYTES:
        raise InvalidHandle("prefix longer than 255 bytes")
    return text


@dataclass(frozen=True, slots=True)
class Handle:
    """A parsed identifier. ``text`` (as given, NFC) and ``key`` (its
    comparison key) are computed once: every stage of a resolution reads them."""

    prefix: str
    suffix: str
    text: str = field(init=False, compare=False, repr=False)
    key: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        text = f"{self.prefix}/{self.suffix}"
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "key", handle_key(text))

    @property
    def prefix_key(self) -> str:
        return handle_key(self.prefix)

    def __str__(self) -> str:
        return self.text


def parse_handle(raw: str | bytes) -> Handle:
    """Parse and normalise ``prefix/suffix``; raise :class:`InvalidHandle`."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidHandle("identifier is not valid UTF-8") from None
    if not isinstance(raw, str):
        raise InvalidHandle("identifier must be text")
    ascii = raw.isascii()          # the common case: already NFC, one byte per character, no surrogates
    text = raw if ascii else unicodedata.normalize("NFC", raw)
    if (len(text) if ascii else len(text.encode("utf-8", "surrogatepass"))) > MAX_HANDLE_BYTES:
        raise InvalidHandle("identifier longer than 255 bytes")
    prefix, sep, suffix = text.partition("/")
    if not sep:
        raise InvalidHandle(f"identifier has no '/': {text!r}")
    if not suffix:
        raise InvalidHandle(f"identifier has an empty suffix: {text!r}")
    if _has_control(text):
        raise InvalidHandle("identifier contains control characters")
    if not ascii:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidHandle("identifier is not valid Unicode") from None
    if not prefix or "" in prefix.split(".") or " " in prefix:
        raise InvalidHandle(f"invalid prefix in identifier: {text!r}")
    return Handle(prefix, suffix)
