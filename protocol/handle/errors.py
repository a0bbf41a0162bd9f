"""The one error of the Handle codec, and the limits the caller sets on input.

Every malformed or over-limit input raises :class:`HandleProtocolError`; it
carries whatever of the message could be read (request id, envelope, opCode)
so a server can still answer RC 4 (protocol error) to the right request.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from protocol.identifier import MAX_HANDLE_BYTES
from protocol.wire import WireError

if TYPE_CHECKING:
    from protocol.handle.envelope import Envelope

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024   # Handle.Net Common.MAX_MESSAGE_LENGTH


class HandleProtocolError(WireError):
    """Malformed Handle protocol input (answer with RC 4, protocol error).

    ``request_id`` is set when the envelope could be read, ``envelope`` too
    (its version tells which version to answer in), ``op_code`` when the
    header could be read.
    """

    def __init__(self, message: str, *, request_id: int | None = None,
                 envelope: "Envelope | None" = None, op_code: int | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.envelope = envelope
        self.op_code = op_code

    def with_context(self, *, envelope: "Envelope | None" = None,
                     op_code: int | None = None) -> "HandleProtocolError":
        """This error with the envelope/opCode filled in where still unknown."""
        if envelope is not None and self.envelope is None:
            self.envelope = envelope
            self.request_id = envelope.request_id
        if op_code is not None and self.op_code is None:
            self.op_code = op_code
        return self


@contextmanager
def protocol_errors() -> Iterator[None]:
    """Turn a :class:`WireError` from the shared reader into :class:`HandleProtocolError`."""
    try:
        yield
    except HandleProtocolError:
        raise
    except WireError as e:
        raise HandleProtocolError(str(e)) from None


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a decoder accepts; anything larger is a protocol error."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # header + body + credential
    max_handle_bytes: int = MAX_HANDLE_BYTES            # every handle field, UTF-8 bytes
    max_indexes: int = 1024                             # index lists (resolve, remove value)
    max_types: int = 1024                               # type list of a resolution request
    max_values: int = 2048                              # values in one body (Handle.Net MAX_HANDLE_VALUES)
    max_list_handles: int = 1 << 20                     # handles in one list-handles response
    max_references: int = 1024                          # references of one handle value


DEFAULT_LIMITS = Limits()
