"""UDP framing: split a message into datagrams and put datagrams back together.

Each datagram is a 20-byte envelope plus at most 492 message bytes (512 in
all). A longer message is cut at exactly 492 bytes: packet k carries sequence
number k, the truncated flag is set on every packet of the set, and each
envelope repeats the whole message length; the receiver copies packet k to
offset k * 492 (HANDLE-WIRE.md, Handle.Net ``MAX_UDP_DATA_SIZE``).

No clock inside: :class:`Reassembler` takes ``now`` (a monotonic time in
seconds) on every call and drops sets still incomplete at their deadline.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable

from protocol.handle.codes import EnvFlag
from protocol.handle.envelope import ENVELOPE_SIZE, Envelope
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits

UDP_DATAGRAM_BYTES = 512
UDP_PAYLOAD_BYTES = UDP_DATAGRAM_BYTES - ENVELOPE_SIZE    # 492
_U32 = struct.Struct(">I")
_TRUNCATED = int(EnvFlag.TRUNCATED)


def _untruncated(flags: EnvFlag) -> EnvFlag:
    return EnvFlag(int(flags) & ~int(EnvFlag.TRUNCATED))


def packet_count(message_length: int) -> int:
    return max(1, -(-message_length // UDP_PAYLOAD_BYTES))


def split_datagrams(data: bytes) -> list[bytes]:
    """Cut ``envelope + message`` (as :func:`~protocol.handle.message.encode`
    returns it) into datagrams. A message of at most 492 bytes stays one
    datagram with sequence 0 and no truncated flag. Only the flags byte and
    the sequence number of the envelope change (it is on every reply's path,
    so no Envelope object is built)."""
    if len(data) < ENVELOPE_SIZE:
        raise ValueError(f"an envelope needs {ENVELOPE_SIZE} bytes, have {len(data)}")
    length = _U32.unpack_from(data, 16)[0]
    message = memoryview(data)[ENVELOPE_SIZE:]
    if len(message) != length:
        raise ValueError(f"envelope says {length} message bytes, have {len(message)}")
    head = bytearray(data[:ENVELOPE_SIZE])
    _U32.pack_into(head, 12, 0)
    if length <= UDP_PAYLOAD_BYTES:
        head[2] &= ~_TRUNCATED & 0xFF
        return [bytes(head) + message]
    head[2] |= _TRUNCATED
    out = []
    for k, off in enumerate(range(0, length, UDP_PAYLOAD_BYTES)):
        _U32.pack_into(head, 12, k)
        out.append(b"".join((head, message[off:off + UDP_PAYLOAD_BYTES])))
    return out


@dataclass(slots=True)
class _Pending:
    envelope: Envelope
    buffer: bytearray
    seen: bytearray          # one byte per packet: 1 once received
    missing: int
    deadline: float


class Reassembler:
    """Collects the datagrams of multi-packet messages, keyed by (sender
    address, request id), within bounds on the number of sets and the bytes
    they hold. Feed every datagram; call :meth:`expire` now and then (feed
    does it too) to drop sets that did not complete in ``timeout`` seconds."""

    def __init__(self, *, timeout: float = 10.0, max_entries: int = 256,
                 max_pending_bytes: int = 4 * 1024 * 1024, limits: Limits = DEFAULT_LIMITS):
        self.timeout = timeout
        self.max_entries = max_entries
        self.max_pending_bytes = max_pending_bytes
        self.limits = limits
        self.dropped = 0          # sets refused for lack of room or expired unfinished
        self._pending: "OrderedDict[tuple[Hashable, int], _Pending]" = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def feed(self, address: Hashable, datagram: bytes, now: float) -> bytes | None:
        """Take one datagram from ``address``. Returns ``envelope + message``
        once the message is whole (at once for a single-packet message), None
        while packets are missing or when there is no room for a new set.
        Raises :class:`HandleProtocolError` for a datagram that does not fit
        (bad envelope, wrong size, sequence past the end, length changed)."""
        self.expire(now)
        env = Envelope.from_bytes(datagram, self.limits)
        payload = memoryview(datagram)[ENVELOPE_SIZE:]
        total = env.message_length
        if env.sequence == 0 and len(payload) == total:
            return bytes(datagram)
        n = packet_count(total)

        def bad(why: str) -> HandleProtocolError:
            return HandleProtocolError(why, request_id=env.request_id, envelope=env)

        if env.sequence >= n:
            raise bad(f"packet {env.sequence} of a {n}-packet message")
        want = UDP_PAYLOAD_BYTES if env.sequence < n - 1 else total - UDP_PAYLOAD_BYTES * (n - 1)
        if len(payload) != want:
            raise bad(f"packet {env.sequence} carries {len(payload)} bytes, expected {want}")
        key = (address, env.request_id)
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= self.max_entries or self._bytes + total > self.max_pending_bytes:
                self.dropped += 1
                return None
            entry = _Pending(env, bytearray(total), bytearray(n), n, now + self.timeout)
            self._pending[key] = entry
            self._bytes += total
        elif entry.envelope.message_length != total or entry.envelope.version != env.version:
            raise bad("packet does not belong to the message being reassembled under this request id")
        if entry.seen[env.sequence]:
            return None                                   # duplicate
        off = env.sequence * UDP_PAYLOAD_BYTES
        entry.buffer[off:off + len(payload)] = payload
        entry.seen[env.sequence] = 1
        entry.missing -= 1
        if entry.missing:
            return None
        del self._pending[key]
        self._bytes -= total
        whole = entry.envelope.with_(flags=_untruncated(entry.envelope.flags), sequence=0)
        return whole.to_bytes() + bytes(entry.buffer)

    def expire(self, now: float) -> list[tuple[Hashable, int]]:
        """Drop the sets whose deadline has passed; returns their keys."""
        gone = []
        while self._pending:
            key, entry = next(iter(self._pending.items()))
            if entry.deadline > now:
                break
            del self._pending[key]
            self._bytes -= entry.envelope.message_length
            self.dropped += 1
            gone.append(key)
        return gone
