"""TCP framing: cut a byte stream into whole ``envelope + message`` units.

Sans-I/O, like h11: no sockets, no asyncio, no clock. The transport feeds
bytes as they arrive and gets events back, in stream order::

    framer = StreamFramer(limits)
    for event in framer.feed(data):              # data_received
        if isinstance(event, HandleProtocolError):
            ...                                  # answer RC 4 (protocol_error_reply), then close
        else:
            ...                                  # bytes: one envelope + message, for decode()
    for event in framer.eof():                   # eof_received
        ...

The contract:

* ``feed(data)`` returns the whole messages that ``data`` completes, in
  order, each a ``bytes`` of exactly ``20 + message_length`` bytes, and after
  them at most one :class:`HandleProtocolError`. Nothing else is raised or
  returned, whatever the input.
* Framing checks only what it needs to find the next boundary: the envelope
  version (2.1..2.11) and the message length (at most
  ``limits.max_message_bytes``). Everything else, including a length too
  short to hold a header, is the decoder's to refuse: the boundary is still
  known, so the stream goes on.
* An envelope it cannot frame gives the error :meth:`Envelope.from_bytes`
  raises (``request_id`` and ``envelope`` set, so RC 4 can be answered).
  The next boundary is then unknown: the framer is :attr:`~StreamFramer.broken`,
  drops what it holds and ignores all further input (``[]``).
* ``eof()`` returns ``[]`` when the stream ended between messages, else one
  error: "stream ended N bytes short of the message" with the envelope and
  request id once the envelope had arrived, "... short of the envelope"
  without them before. After it the framer takes no more input.

Only the next message's start is ever held (:attr:`~StreamFramer.buffered`,
less than ``20 + limits.max_message_bytes``); whole messages are handed out
at once, so a transport's queue grows by at most one read's worth per call
and backpressure is the transport's: pause reading while its queue is long.

Speed: the hot path makes no object per message beyond its ``bytes`` slice
(a chunk that is exactly one message is returned as is): one struct read of
the length, two byte compares for the version; an :class:`Envelope` is built
only for errors. A chunk is cut at offsets, so many small messages in one
read cost linear time; a message arriving in many small reads is appended to
the buffer and not looked at again until it is whole.
"""

from __future__ import annotations

import struct

from protocol.handle.codes import MAX_VERSION, MIN_VERSION
from protocol.handle.envelope import ENVELOPE_SIZE, Envelope
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits

_LENGTH = struct.Struct(">I")          # envelope offset 16: message length
_LENGTH_AT = 16
# The quick version test: never looser than Envelope.from_bytes (exact for
# major MIN_VERSION[0]); what it refuses goes to the full check, which decides.
_MAJOR = MIN_VERSION[0]
_MIN_MINOR = MIN_VERSION[1]
_MAX_MINOR = MAX_VERSION[1] if MAX_VERSION[0] == _MAJOR else 0xFF


class StreamFramer:
    """Cuts one connection's byte stream into messages; see the module docstring."""

    __slots__ = ("limits", "_max", "_buf", "_need", "_open", "_broken")

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits
        self._max = limits.max_message_bytes
        self._buf = bytearray()        # the start of the next message, never a whole one
        self._need = ENVELOPE_SIZE     # its length once whole (20 while the envelope is incomplete)
        self._open = True              # False once broken or at EOF: input ignored
        self._broken = False

    @property
    def broken(self) -> bool:
        """An error was reported (unframeable envelope, or EOF inside a
        message); input is ignored from then on."""
        return self._broken

    @property
    def buffered(self) -> int:
        """Bytes held of the next message (0 between messages); always less
        than 20 + ``limits.max_message_bytes``."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | HandleProtocolError]:
        """Take ``data``; return the whole messages it completes, in order,
        then at most one error (the framer is broken after it)."""
        if not self._open:
            return []
        buf = self._buf
        if buf or type(data) is not bytes:
            buf += data
            if len(buf) < self._need:
                return []              # still inside the held message: nothing re-read
            data = bytes(buf)          # the held start, completed: cut from one bytes object
            buf.clear()
        out: list[bytes | HandleProtocolError] = []
        n = len(data)
        pos = 0
        while n - pos >= ENVELOPE_SIZE:
            length = _LENGTH.unpack_from(data, pos + _LENGTH_AT)[0]
            if data[pos] != _MAJOR or not _MIN_MINOR <= data[pos + 1] <= _MAX_MINOR or length > self._max:
                error = self._refuse(data[pos:pos + ENVELOPE_SIZE])
                if error is not None:
                    out.append(error)
                    self._open = False
                    self._broken = True
                    return out
            end = pos + ENVELOPE_SIZE + length
            if end > n:
                self._need = end - pos
                break
            out.append(data[pos:end])  # a chunk that is exactly one message is passed on uncopied
            pos = end
        else:
            self._need = ENVELOPE_SIZE
        if pos < n:
            buf += memoryview(data)[pos:]
        return out

    def eof(self) -> list[bytes | HandleProtocolError]:
        """The stream ended: ``[]``, or one error when it ended inside a
        message. Input is ignored afterwards."""
        if not self._open:
            return []
        self._open = False
        buf = self._buf
        if not buf:
            return []
        self._broken = True
        held = bytes(buf)
        buf.clear()
        if len(held) < ENVELOPE_SIZE:
            return [HandleProtocolError(f"stream ended {ENVELOPE_SIZE - len(held)} bytes short of the envelope")]
        try:
            env = Envelope.from_bytes(held, self.limits)
        except HandleProtocolError as e:   # not reached: feed has checked this envelope
            return [e.with_traceback(None)]
        return [HandleProtocolError(
            f"stream ended {ENVELOPE_SIZE + env.message_length - len(held)} bytes short of the message",
            request_id=env.request_id, envelope=env)]

    def _refuse(self, envelope: bytes) -> HandleProtocolError | None:
        """The full envelope check, for its error (None: it takes the envelope after all)."""
        try:
            Envelope.from_bytes(envelope, self.limits)
        except HandleProtocolError as e:
            return e.with_traceback(None)
        return None
