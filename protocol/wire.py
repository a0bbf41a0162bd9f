"""One bounds-checked reader and a writer for every binary format in the node.

Every length is checked before it is trusted; a short or lying input raises
:class:`WireError` and nothing else (no IndexError, no struct.error).
"""

from __future__ import annotations

import struct

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class WireError(ValueError):
    """Malformed binary input (Handle RC 4, protocol error)."""


class Reader:
    __slots__ = ("_buf", "pos", "_end")

    def __init__(self, data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None):
        self._buf = memoryview(data)
        self.pos = start
        self._end = len(self._buf) if end is None else end
        if not 0 <= start <= self._end <= len(self._buf):
            raise WireError("reader window out of range")

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    def _need(self, n: int) -> int:
        if n < 0 or self.pos + n > self._end:
            raise WireError(f"need {n} bytes at offset {self.pos}, have {self._end - self.pos}")
        p = self.pos
        self.pos = p + n
        return p

    def u8(self) -> int:
        return _U8.unpack_from(self._buf, self._need(1))[0]

    def u16(self) -> int:
        return _U16.unpack_from(self._buf, self._need(2))[0]

    def u32(self) -> int:
        return _U32.unpack_from(self._buf, self._need(4))[0]

    def raw(self, n: int) -> bytes:
        p = self._need(n)
        return bytes(self._buf[p:p + n])

    def blob(self) -> bytes:
        """u32 length followed by that many bytes."""
        return self.raw(self.u32())

    def string(self) -> str:
        """u32 length followed by UTF-8 text."""
        data = self.blob()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise WireError("string is not valid UTF-8") from None

    def count(self, min_item_size: int, limit: int = 1 << 20) -> int:
        """u32 element count, refused when it could not fit in what is left."""
        n = self.u32()
        if n > limit or n * min_item_size > self.remaining:
            raise WireError(f"count {n} does not fit in {self.remaining} bytes")
        return n

    def sub(self, n: int) -> "Reader":
        """A reader over the next ``n`` bytes; this reader skips past them."""
        p = self._need(n)
        return Reader(self._buf, p, p + n)

    def expect_end(self) -> None:
        if self.pos != self._end:
            raise WireError(f"{self._end - self.pos} unexpected trailing bytes")


class Writer:
    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts = bytearray()

    def u8(self, v: int) -> "Writer":
        self._parts += _U8.pack(v)
        return self

    def u16(self, v: int) -> "Writer":
        self._parts += _U16.pack(v)
        return self

    def u32(self, v: int) -> "Writer":
        self._parts += _U32.pack(v)
        return self

    def raw(self, data: bytes) -> "Writer":
        self._parts += data
        return self

    def blob(self, data: bytes) -> "Writer":
        self._parts += _U32.pack(len(data))
        self._parts += data
        return self

    def string(self, text: str) -> "Writer":
        try:
            return self.blob(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise WireError("text is not encodable as UTF-8") from None

    def getvalue(self) -> bytes:
        return bytes(self._parts)
