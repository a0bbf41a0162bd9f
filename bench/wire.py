"""Requests and replies as bytes, built once before a run so generators only send.

HS requests come from ``protocol.handle``'s codec: one request is encoded
per handle length and every handle of that length is spliced into it, so a
pool of 262,144 requests costs a fraction of a second. Replies for the
ceiling responders are real Handle messages of a chosen size. HTTP requests
are complete HTTP/1.1 byte strings (keep-alive).
"""

from __future__ import annotations

import base64
import time
from typing import Iterable, Sequence
from urllib.parse import quote

import cbor2
import orjson

from protocol.handle import (ENVELOPE_SIZE, ErrorResponse, ResolutionRequest, ResolutionResponse, decode, encode,
                             make_reply, make_request, split_datagrams)
from protocol.handle.envelope import HEADER_SIZE
from protocol.jsoncodec import value_to_json
from protocol.values import HandleValue

# Offsets the generators read in a reply without decoding it.
REQUEST_ID_AT = 8                       # envelope: u32 request id
SEQUENCE_AT = 12                        # envelope: u32 sequence number (UDP packets)
LENGTH_AT = 16                          # envelope: u32 message length
RC_AT = ENVELOPE_SIZE + 4               # header: u32 response code
_MARK = 0x7E                            # '~' never appears in benchmark handles


def hs_requests(handles: Iterable[str], *, now: int | None = None) -> list[bytes]:
    """One encoded resolution request per handle, request id 0 (patched when sent)."""
    now = int(time.time()) if now is None else now
    templates: dict[int, tuple[bytes, bytes]] = {}
    out = []
    for h in handles:
        raw = h.encode()
        parts = templates.get(len(raw))
        if parts is None:
            marker = bytes([_MARK]) * len(raw)
            wire = encode(make_request(ResolutionRequest(marker.decode()), request_id=0, now=now))
            at = wire.index(marker)
            parts = templates[len(raw)] = (wire[:at], wire[at + len(raw):])
        out.append(parts[0] + raw + parts[1])
    return out


def hs_reply(size: int, *, found: bool = True) -> bytes:
    """A Handle resolution reply (envelope + message) of exactly ``size`` bytes
    when ``size`` allows it: the ceiling responders send this."""
    request = decode(encode(make_request(ResolutionRequest("88.118.8/CEILING"), request_id=0, now=0)))

    def build(pad: int) -> bytes:
        if found:
            body = ResolutionResponse("88.118.8/CEILING", (HandleValue(1, "DESC", b"x" * pad),))
        else:
            body = ErrorResponse("x" * pad)
        return encode(make_reply(request, body, now=0, response_code=None if found else 100))

    base = len(build(0))
    return build(max(0, size - base))


def hs_record_replies(kind: str, count: int = 100) -> list[bytes]:
    """Real resolution replies for records 0..count-1 of ``kind`` (``small`` or
    ``mixed``), which the ceiling responders cycle through so their replies
    have the shapes and datagram counts the node's have for those records."""
    from .records import handle_of, record_values

    request = decode(encode(make_request(ResolutionRequest("88.118.8/CEILING"), request_id=0, now=0)))
    return [encode(make_reply(request, ResolutionResponse(handle_of(i), tuple(record_values(i, kind))), now=0))
            for i in range(count)]


def hs_datagrams(reply: bytes) -> list[bytes]:
    """The reply as the UDP packets a server sends (492 message bytes each)."""
    return split_datagrams(reply)


def packets_for(message_length: int) -> int:
    return max(1, -(-message_length // 492))


# ------------------------------------------------------------------ HTTP

def _http(method: str, path: str, host: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def basic_auth(identity: str, secret: str) -> tuple[str, str]:
    token = base64.b64encode(f"{quote(identity)}:{secret}".encode()).decode()
    return ("Authorization", f"Basic {token}")


def rest_gets(handles: Iterable[str], host: str) -> list[bytes]:
    return [_http("GET", "/api/handles/" + quote(h, safe="/"), host) for h in handles]


def cbor_resolves(handles: Sequence[str], host: str, per_request: int) -> list[bytes]:
    """Batch resolutions in CBOR, ``per_request`` handles each, CBOR replies."""
    out = []
    for at in range(0, max(1, len(handles) - per_request + 1), per_request):
        body = cbor2.dumps({"handles": list(handles[at:at + per_request])})
        out.append(_http("POST", "/api/batch/resolve", host,
                         [("Content-Type", "application/cbor"), ("Accept", "application/cbor")], body))
    return out


def _json_data(v: HandleValue) -> dict:
    if v.type == "HS_ADMIN":
        return value_to_json(v)["data"]          # {"format": "admin", ...}
    return {"format": "string", "value": v.data.decode()}


def _json_values(values: Sequence[HandleValue]) -> list[dict]:
    return [{"index": v.index, "type": v.type, "data": _json_data(v)} for v in values]


def rest_puts(items: Sequence[tuple[str, Sequence[HandleValue]]], host: str, auth: tuple[str, str]) -> list[bytes]:
    """Single registrations: ``PUT /api/handles/{h}`` (create or replace)."""
    return [_http("PUT", "/api/handles/" + quote(h, safe="/"), host,
                  [auth, ("Content-Type", "application/json")], orjson.dumps({"values": _json_values(v)}))
            for h, v in items]


def cbor_registers(items: Sequence[tuple[str, Sequence[HandleValue]]], host: str, auth: tuple[str, str],
                   per_request: int) -> list[bytes]:
    """Batch registrations in CBOR (overwrite, so a cycled pool keeps writing)."""
    out = []
    for at in range(0, max(1, len(items) - per_request + 1), per_request):
        chunk = items[at:at + per_request]
        body = cbor2.dumps({"overwrite": True,
                            "items": [{"handle": h, "values": _json_values(v)} for h, v in chunk]})
        out.append(_http("POST", "/api/batch/register", host,
                         [auth, ("Content-Type", "application/cbor"), ("Accept", "application/cbor")], body))
    return out


__all__ = ["REQUEST_ID_AT", "SEQUENCE_AT", "LENGTH_AT", "RC_AT", "HEADER_SIZE", "hs_requests", "hs_reply",
           "hs_record_replies", "hs_datagrams", "packets_for", "basic_auth", "rest_gets", "cbor_resolves", "rest_puts",
           "cbor_registers"]
