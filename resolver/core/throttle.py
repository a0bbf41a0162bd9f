"""Response-rate limiting of UDP answers per source prefix, in the manner of DNS RRL.

Over UDP the source address is not verified: anyone may send a request that
claims a victim's address and let the node answer the victim. Two rules keep
the node from being such an amplifier:

* an answer never exceeds ``handle.max_udp_reply_bytes`` (the service refuses
  a larger one with RC 2, and the client asks over TCP, whose handshake
  proves the address);
* the answers to one *source prefix* (IPv4 /24, IPv6 /56: what one network
  holds, so that spreading claimed addresses over a victim's network gains
  nothing) are limited by a token bucket of ``handle.udp_burst`` answers
  refilled at ``handle.udp_rate`` a second.

A request past its prefix's bucket is not answered, except that every
``handle.udp_slip``-th one gets a small RC 2 reply (the slip), no larger than
a request: a real client behind a busy prefix learns to ask over TCP, and a
victim gets no more bytes than the attacker sent. Networks in
``handle.udp_rate_exempt`` (loopback by default: it cannot be claimed from
outside the machine) are never limited.

State is bounded: at most ``handle.udp_rate_sources`` buckets (a full table
forgets its oldest; a forgotten prefix starts again with a full bucket), and a
cache of peer strings to prefixes of the same size. The buckets are per worker process: with N workers a prefix may
get up to N times the rate.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Callable

from ..settings import HandleSettings, address_in, networks

ANSWER, SLIP, DROP = 0, 1, 2
_EXEMPT = ""                       # the prefix key of an exempt peer


def source_prefix(peer: str) -> str:
    """The prefix a source is counted under: its IPv4 /24, its IPv6 /56
    (an IPv4-mapped IPv6 address by its IPv4 /24); a peer that is not an
    address (a test's fake) stands for itself."""
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = 24 if ip.version == 4 else 56
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


class ResponseRateLimit:
    """Decides, per UDP request, whether to answer it, slip or drop (see the module docstring)."""

    def __init__(self, settings: HandleSettings, clock: Callable[[], float] = time.monotonic,
                 on_size: Callable[[int], None] | None = None) -> None:
        self._on_size = on_size                       # told the number of prefixes tracked when it grows
        self.rate = float(settings.udp_rate)
        self.burst = float(settings.udp_burst)
        self.slip = settings.udp_slip
        self.max_sources = settings.udp_rate_sources
        self._exempt = networks(settings.udp_rate_exempt)
        self._clock = clock
        self._keys: dict[str, str] = {}               # peer -> its prefix (_EXEMPT: never limited)
        # Peers seen to be exempt: a transport may skip admit() for them (one set lookup per request).
        self.exempt: set[str] = set()
        self._buckets: dict[str, list[float]] = {}    # prefix -> [tokens, time of the last refill, limited]

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _key(self, peer: str) -> str:
        if len(self._keys) >= self.max_sources:
            self._keys.clear()                        # a cache: rebuilt as peers come back
            self.exempt.clear()
        if address_in(peer, self._exempt):
            key = _EXEMPT
            self.exempt.add(peer)
        else:
            key = source_prefix(peer)
        self._keys[peer] = key
        return key

    def admit(self, peer: str) -> int:
        """ANSWER, SLIP (a small refusal instead of the answer) or DROP."""
        key = self._keys.get(peer)
        if key is None:
            key = self._key(peer)
        if not key:
            return ANSWER
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                del self._buckets[next(iter(self._buckets))]
            self._buckets[key] = [self.burst - 1.0, now, 0.0]
            if self._on_size is not None:
                self._on_size(len(self._buckets))
            return ANSWER
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = (tokens if tokens < self.burst else self.burst) - 1.0
            return ANSWER
        bucket[0] = tokens
        bucket[2] += 1.0
        return SLIP if self.slip and bucket[2] % self.slip == 0 else DROP


def udp_limit(settings: HandleSettings, clock: Callable[[], float] = time.monotonic,
              on_size: Callable[[int], None] | None = None) -> ResponseRateLimit | None:
    """The node's limiter, or None when ``handle.udp_rate`` is 0 (no limit)."""
    limit = ResponseRateLimit(settings, clock, on_size)
    return limit if limit.enabled else None


class WorkBudget:
    """Public-key work (a signature, a Diffie-Hellman exchange) a source prefix
    may make the node do: a token bucket of ``handle.crypto_burst`` units per
    prefix, refilled at ``handle.crypto_rate`` a second, over every transport
    (a signed reply costs :data:`SIGNATURE`, a session setup :data:`KEY_EXCHANGE`
    more). Past it the request is refused (RC 3) without the work, so one
    network asking for certified replies cannot take a worker's CPU from the
    others. At most ``handle.udp_rate_sources`` prefixes are tracked (a full
    table forgets its oldest); per worker process."""

    def __init__(self, settings: HandleSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(settings.crypto_rate)
        self.burst = float(settings.crypto_burst)
        self.max_sources = settings.udp_rate_sources
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}      # prefix -> [units, time of the last refill]

    def __len__(self) -> int:
        return len(self._buckets)

    def spend(self, peer: str, cost: float) -> bool:
        """Whether ``peer``'s prefix may have ``cost`` units of work now (then taken)."""
        if self.rate <= 0:
            return True
        key, now = source_prefix(peer), self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_sources:
                del self._buckets[next(iter(self._buckets))]
            bucket = self._buckets[key] = [self.burst, now]
        units = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if units < cost:
            bucket[0] = units
            return False
        bucket[0] = units - cost
        return True


SIGNATURE = 1.0          # units of a WorkBudget: one RSA-2048 signature (about 0.3 ms here)
KEY_EXCHANGE = 10.0      # a session setup's Diffie-Hellman (about 3 ms at 1024 bits, 10 ms at 2048)
