"""The credential section after the body (RFC 3652 2.2.4; Handle.Net
``AbstractMessage.signMessage``).

On the wire: u32 length, then version u8 (0), reserved u8, flags u16, signer
handle (string), signer index u32, type (string: ``HS_SIGNED`` or
``HS_MAC``), u32 section length, section. For HS_SIGNED and HS_MAC the
section is the hash algorithm (string, e.g. ``SHA-256``, ``HMAC-SHA256``)
and the signature (u32 length + bytes). The section is kept as raw bytes and
parsed into ``hash_alg``/``signature`` when it has that shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.handle.codes import at_least
from protocol.handle.errors import DEFAULT_LIMITS, HandleProtocolError, Limits, protocol_errors
from protocol.handle.valuecodec import read_handle
from protocol.wire import Reader, WireError, Writer

SIGNED = "HS_SIGNED"
MAC = "HS_MAC"


@dataclass(frozen=True, slots=True)
class Credential:
    """A parsed credential; ``to_bytes()`` gives back exactly the bytes read
    (without the outer u32 length), so the raw form is never lost."""

    type: str = SIGNED
    section: bytes = b""
    signer_handle: str = ""
    signer_index: int = 0       # Handle.Net puts its session counter here
    flags: int = 0
    version: int = 0
    reserved: int = 0

    @classmethod
    def signed(cls, hash_alg: str, signature: bytes, *, type: str = SIGNED, signer_handle: str = "",
               signer_index: int = 0) -> "Credential":
        """Build an HS_SIGNED/HS_MAC credential from its hash algorithm and signature."""
        return cls(type, Writer().string(hash_alg).blob(signature).getvalue(), signer_handle, signer_index)

    @property
    def hash_alg(self) -> str | None:
        parsed = self._parsed()
        return parsed[0] if parsed else None

    @property
    def signature(self) -> bytes | None:
        parsed = self._parsed()
        return parsed[1] if parsed else None

    @property
    def raw(self) -> bytes:
        return self.to_bytes()

    def _parsed(self) -> tuple[str, bytes] | None:
        try:
            r = Reader(self.section)
            alg, sig = r.string(), r.blob()
            r.expect_end()
            return alg, sig
        except WireError:
            return None

    def to_bytes(self) -> bytes:
        if not (0 <= self.version <= 0xFF and 0 <= self.reserved <= 0xFF and 0 <= self.flags <= 0xFFFF
                and 0 <= self.signer_index <= 0xFFFFFFFF):
            raise ValueError("cannot encode credential: a field does not fit its wire size")
        w = Writer().u8(self.version).u8(self.reserved).u16(self.flags)
        w.string(self.signer_handle).u32(self.signer_index).string(self.type).blob(self.section)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, limits: Limits = DEFAULT_LIMITS) -> "Credential":
        with protocol_errors():
            r = Reader(data)
            version, reserved, flags = r.u8(), r.u8(), r.u16()
            signer, index = read_handle(r, limits), r.u32()
            ctype, section = r.string(), r.blob()
            r.expect_end()
        if version != 0:
            raise HandleProtocolError(f"credential version {version} is not 0")
        return cls(ctype, section, signer, index, flags, version, reserved)


def signed_data(header_and_body: bytes, version: tuple[int, int], suggested: tuple[int, int],
                session_id: int, request_id: int, session_counter: int = 0) -> bytes:
    """The bytes an HS_SIGNED credential signs (Handle.Net 9
    ``AbstractMessage.signMessage(Signature)``): from 2.7 major, minor,
    (from 2.8) suggested major/minor, session id, request id, session counter,
    then header + body; before 2.6 header + body alone. 2.6 keeps Handle.Net's
    overlapping-write bug: 14 bytes, major, minor, two bytes of the session id,
    the counter, six zeros."""
    if at_least(version, (2, 7)):
        w = Writer().u8(version[0]).u8(version[1])
        if at_least(version, (2, 8)):
            w.u8(suggested[0]).u8(suggested[1])
        w.u32(session_id).u32(request_id).u32(session_counter)
        return w.getvalue() + header_and_body
    if at_least(version, (2, 6)):
        sid = session_id.to_bytes(4, "big")
        prefix = bytes(version) + sid[:2] + session_counter.to_bytes(4, "big") + bytes(6)
        return prefix + header_and_body
    return header_and_body
