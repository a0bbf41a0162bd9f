"""Typed views of ``HandleValue.data`` for the well-known types, binary both ways.

Layouts follow RFC 3651 section 3.2 and Handle.Net's ``Encoder``/``Util``:

* ``HS_ADMIN``  u16 permission bits, admin handle (string), u32 admin index
  (Handle.Net 7.3 and earlier appended two zero bytes; kept as a flag);
* ``HS_SITE``   site record: version, protocol version, serial, primary mask,
  hash option and filter, attributes, servers with interfaces;
* ``HS_VLIST``  u32 count, then handle (string) + u32 index each;
* ``HS_PUBKEY`` key type (string), u16 reserved flags, then the key's big
  integers as length-prefixed bytes (DSA q p g y, RSA e n, DH y p g);
* ``URL``, ``EMAIL``, ``HS_ALIAS``, ``DESC``, ``HS_CERT``, ``HS_SIGNATURE``
  UTF-8 text (HS_CERT and HS_SIGNATURE hold JSON/JWS text since Handle.Net 8);
* ``HS_SECKEY`` and every unknown type: opaque bytes, passed through untouched.

Public API:

``decode_data(type, data) -> AdminRef | SiteInfo | VList | PublicKey | Text | Opaque``
    the typed view of one value's data; raises :class:`WireError` when a known
    type's data is malformed. Types match as Handle.Net's ``hasType`` does:
    ASCII case-insensitive, and ``HS_SITE.PREFIX`` counts as ``HS_SITE``.
``kind_of(type) -> str``
    which view a type gets: "admin", "site", "vlist", "key", "text", "opaque".
``view.encode() -> bytes`` / ``View.decode(bytes)``
    each view class round-trips its own bytes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag

from protocol.values import Reference
from protocol.wire import Reader, WireError, Writer

__all__ = [
    "AdminPerm", "ALL_ADMIN_PERMS", "AdminRef", "Interface", "ServerInfo", "SiteInfo",
    "VList", "PublicKey", "Text", "Opaque", "WireError", "decode_data", "kind_of",
    "has_type", "ADDRESS_LEN",
]

ADDRESS_LEN = 16


class AdminPerm(IntFlag):
    """HS_ADMIN permission bits (Handle.Net ``Encoder.PERM_*``; bit i is
    ``AdminRecord.perms[i]`` and the i-th character from the right of the JSON
    permission string)."""

    ADD_HANDLE = 0x0001
    DELETE_HANDLE = 0x0002
    ADD_DERIVED_PREFIX = 0x0004      # formerly ADD_NAMING_AUTH
    DELETE_DERIVED_PREFIX = 0x0008   # formerly DELETE_NAMING_AUTH
    MODIFY_VALUE = 0x0010
    REMOVE_VALUE = 0x0020
    ADD_VALUE = 0x0040
    MODIFY_ADMIN = 0x0080
    REMOVE_ADMIN = 0x0100
    ADD_ADMIN = 0x0200
    READ_VALUE = 0x0400
    LIST_HANDLES = 0x0800
    ADD_NAMING_AUTH = 0x0004
    DELETE_NAMING_AUTH = 0x0008


ALL_ADMIN_PERMS = 0x0FFF


def has_type(value_type: str, wanted: str) -> bool:
    """Handle.Net ``HandleValue.hasType``: equal ignoring ASCII case, or a
    ``wanted.sub`` subtype of it."""
    a, b = value_type.upper(), wanted.upper()
    return a == b or (a.startswith(b) and a[len(b):len(b) + 1] == ".")


_SITE_TYPES = ("HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE")
_TEXT_TYPES = ("URL", "EMAIL", "HS_ALIAS", "DESC", "HS_CERT", "HS_SIGNATURE")


def kind_of(value_type: str) -> str:
    """The view a value type gets (see the module docstring)."""
    if has_type(value_type, "HS_ADMIN"):
        return "admin"
    if has_type(value_type, "HS_VLIST"):
        return "vlist"
    if any(has_type(value_type, t) for t in _SITE_TYPES):
        return "site"
    if has_type(value_type, "HS_PUBKEY"):
        return "key"
    if any(has_type(value_type, t) for t in _TEXT_TYPES):
        return "text"
    return "opaque"


def _check(cond: bool, what: str) -> None:
    """Refuse to encode a field that does not fit its wire size."""
    if not cond:
        raise WireError(f"cannot encode: {what}")


def _u(v: int, bits: int) -> bool:
    return isinstance(v, int) and 0 <= v < (1 << bits)


def _utf8(text: str) -> bytes:
    """Text for the wire; a lone surrogate is refused with WireError."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise WireError("text is not valid Unicode (lone surrogate)") from None


# ---------------------------------------------------------------- HS_ADMIN

@dataclass(frozen=True, slots=True)
class AdminRef:
    """Who administers a handle and with which rights."""

    handle: str
    index: int
    permissions: int = ALL_ADMIN_PERMS
    legacy_length: bool = False  # two trailing zero bytes (Handle.Net <= 7.3)

    def allows(self, perm: AdminPerm) -> bool:
        return bool(self.permissions & perm)

    def encode(self) -> bytes:
        _check(_u(self.permissions, 16), "admin permissions are 16 bits")
        _check(_u(self.index, 32), "admin index is 32 bits")
        w = Writer().u16(self.permissions).blob(_utf8(self.handle)).u32(self.index)
        if self.legacy_length:
            w.raw(b"\x00\x00")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "AdminRef":
        r = Reader(data)
        perms = r.u16()
        handle = r.string()
        index = r.u32()
        legacy = r.remaining == 2
        if legacy and r.raw(2) != b"\x00\x00":
            raise WireError("admin record has two stray trailing bytes")
        r.expect_end()
        return cls(handle, index, perms, legacy)


# ---------------------------------------------------------------- HS_VLIST

@dataclass(frozen=True, slots=True)
class VList:
    """A value list: references to other handle values (often admin groups)."""

    refs: tuple[Reference, ...] = ()

    def encode(self) -> bytes:
        w = Writer().u32(len(self.refs))
        for ref in self.refs:
            _check(_u(ref.index, 32), "reference index is 32 bits")
            w.blob(_utf8(ref.handle)).u32(ref.index)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "VList":
        r = Reader(data)
        refs = tuple(Reference(r.string(), r.u32()) for _ in range(r.count(8)))
        r.expect_end()
        return cls(refs)


# ---------------------------------------------------------------- HS_SITE

@dataclass(frozen=True, slots=True)
class Interface:
    """One way to reach a server: service type, transport and port."""

    OUT_OF_SERVICE = 0
    ADMIN = 1
    QUERY = 2
    ADMIN_AND_QUERY = 3
    UDP = 0
    TCP = 1
    HTTP = 2
    HTTPS = 3

    type: int
    transport: int
    port: int

    @property
    def admin(self) -> bool:
        return bool(self.type & Interface.ADMIN)

    @property
    def query(self) -> bool:
        return bool(self.type & Interface.QUERY)

    def _write(self, w: Writer) -> None:
        _check(_u(self.type, 8) and _u(self.transport, 8), "interface type/transport are 8 bits")
        _check(_u(self.port, 32), "interface port is 32 bits")
        w.u8(self.type).u8(self.transport).u32(self.port)

    @classmethod
    def _read(cls, r: Reader) -> "Interface":
        return cls(r.u8(), r.u8(), r.u32())


def _ipv6_text(words: list[int]) -> str:
    """RFC 5952 text as Handle.Net's ``Util.rfcIpRepr``: the first longest run
    of two or more zero words becomes ``::``."""
    best, best_len, run_start, run_len = -1, 0, -1, 0
    for i, word in enumerate(words + [1]):
        if word == 0:
            if run_len == 0:
                run_start = i
            run_len += 1
            continue
        if run_len > best_len:
            best, best_len = run_start, run_len
        run_len = 0
    if best_len < 2:
        return ":".join(f"{x:x}" for x in words)
    head = ":".join(f"{x:x}" for x in words[:best])
    tail = ":".join(f"{x:x}" for x in words[best + best_len:])
    return f"{head}::{tail}"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """One server of a site: id, 16-byte address, public key bytes, interfaces."""

    server_id: int
    address: bytes
    public_key: bytes = b""
    interfaces: tuple[Interface, ...] = ()

    @property
    def address_text(self) -> str:
        """As Handle.Net's ``getAddressString``: dotted IPv4 when the first 12
        bytes are zero, RFC 5952 IPv6 text otherwise."""
        a = self.address
        if len(a) == ADDRESS_LEN and not any(a[:12]):
            return ".".join(str(b) for b in a[12:])
        if len(a) != ADDRESS_LEN:
            return a.hex()
        return _ipv6_text([int.from_bytes(a[i:i + 2], "big") for i in range(0, 16, 2)])

    def _write(self, w: Writer) -> None:
        _check(_u(self.server_id, 32), "server id is 32 bits")
        _check(len(self.address) == ADDRESS_LEN, "server address is 16 bytes")
        w.u32(self.server_id).raw(self.address).blob(self.public_key).u32(len(self.interfaces))
        for intf in self.interfaces:
            intf._write(w)

    @classmethod
    def _read(cls, r: Reader) -> "ServerInfo":
        server_id = r.u32()
        address = r.raw(ADDRESS_LEN)
        key = r.blob()
        interfaces = tuple(Interface._read(r) for _ in range(r.count(6)))
        return cls(server_id, address, key, interfaces)


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """An HS_SITE record: how to reach the servers of one site."""

    PRIMARY = 0x80
    MULTI_PRIMARY = 0x40
    HASH_BY_PREFIX = 0
    HASH_BY_SUFFIX = 1
    HASH_BY_ALL = 2

    servers: tuple[ServerInfo, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()
    serial: int = 0
    primary_mask: int = 0
    hash_option: int = HASH_BY_ALL
    hash_filter: str = ""
    major: int = 2
    minor: int = 11   # Handle.Net 9's SiteInfo default
    data_version: int = 1

    @property
    def is_primary(self) -> bool:
        return bool(self.primary_mask & SiteInfo.PRIMARY)

    @property
    def multi_primary(self) -> bool:
        return bool(self.primary_mask & SiteInfo.MULTI_PRIMARY)

    def attribute(self, name: str) -> str | None:
        return next((v for n, v in self.attributes if n == name), None)

    def encode(self) -> bytes:
        _check(_u(self.data_version, 16) and _u(self.serial, 16), "site version/serial are 16 bits")
        _check(all(_u(x, 8) for x in (self.major, self.minor, self.primary_mask, self.hash_option)),
               "site protocol version, primary mask and hash option are 8 bits")
        w = Writer().u16(self.data_version).u8(self.major).u8(self.minor).u16(self.serial)
        w.u8(self.primary_mask).u8(self.hash_option).blob(_utf8(self.hash_filter))
        w.u32(len(self.attributes))
        for name, value in self.attributes:
            w.blob(_utf8(name)).blob(_utf8(value))
        w.u32(len(self.servers))
        for server in self.servers:
            server._write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "SiteInfo":
        r = Reader(data)
        data_version = r.u16()
        major, minor = r.u8(), r.u8()
        serial = r.u16()
        mask, hash_option = r.u8(), r.u8()
        hash_filter = r.string()
        attributes = tuple((r.string(), r.string()) for _ in range(r.count(8)))
        servers = tuple(ServerInfo._read(r) for _ in range(r.count(4 + ADDRESS_LEN + 8)))
        r.expect_end()
        return cls(servers, attributes, serial, mask, hash_option, hash_filter, major, minor, data_version)


# ---------------------------------------------------------------- HS_PUBKEY

_KEY_PARTS = {
    "DSA_PUB_KEY": ("q", "p", "g", "y"),
    "RSA_PUB_KEY": ("e", "n"),
    "DH_PUB_KEY": ("y", "p", "g"),
}


def key_trailer(key_type: str) -> bytes:
    """What Handle.Net writes after a key's integers: four zero bytes after an
    RSA key (it sizes it for four length fields and writes three; its 9.3.1
    server's HS_SITE has them), nothing after the others."""
    return bytes(4) if key_type == "RSA_PUB_KEY" else b""


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A Handle public key, parsed where the key type is known, else opaque.

    ``parts`` are the big-endian integer fields in wire order (empty for an
    unknown key type); ``rest`` is whatever follows them, kept so that
    ``encode()`` gives back the exact bytes.
    """

    key_type: str
    parts: tuple[bytes, ...] = ()
    flags: int = 0
    rest: bytes = b""

    @property
    def known(self) -> bool:
        return self.key_type in _KEY_PARTS

    def numbers(self) -> dict[str, int]:
        """The key's integers by name (``n``/``e``, ``p``/``q``/``g``/``y``)."""
        names = _KEY_PARTS.get(self.key_type, ())
        return {n: int.from_bytes(b, "big") for n, b in zip(names, self.parts)}

    def encode(self) -> bytes:
        _check(_u(self.flags, 16), "key flags are 16 bits")
        _check(len(self.parts) == len(_KEY_PARTS.get(self.key_type, ())), "key parts do not match key type")
        w = Writer().blob(_utf8(self.key_type)).u16(self.flags)
        for part in self.parts:
            w.blob(part)
        return w.raw(self.rest).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "PublicKey":
        r = Reader(data)
        key_type = r.string()
        flags = r.u16()
        parts = tuple(r.blob() for _ in _KEY_PARTS.get(key_type, ()))
        return cls(key_type, parts, flags, r.raw(r.remaining))

    @classmethod
    def from_numbers(cls, key_type: str, numbers: dict[str, int]) -> "PublicKey":
        """Build a key as Handle.Net's ``Util.getBytesFromPublicKey`` does:
        Java ``BigInteger.toByteArray`` (minimal two's complement) per part,
        then :func:`key_trailer`."""
        names = _KEY_PARTS.get(key_type)
        if names is None:
            raise WireError(f"unknown key type {key_type!r}")
        parts = []
        for name in names:
            n = numbers.get(name)
            _check(isinstance(n, int) and not isinstance(n, bool) and n >= 0,
                   f"key part {name} must be a non-negative integer")
            parts.append(n.to_bytes(n.bit_length() // 8 + 1, "big"))
        return cls(key_type, tuple(parts), rest=key_trailer(key_type))


# ---------------------------------------------------------------- text, opaque

@dataclass(frozen=True, slots=True)
class Text:
    """UTF-8 text data (URL, EMAIL, HS_ALIAS, DESC, HS_CERT, HS_SIGNATURE)."""

    text: str

    def encode(self) -> bytes:
        return _utf8(self.text)

    @classmethod
    def decode(cls, data: bytes) -> "Text":
        try:
            return cls(bytes(data).decode("utf-8"))
        except UnicodeDecodeError:
            raise WireError("text data is not valid UTF-8") from None


@dataclass(frozen=True, slots=True)
class Opaque:
    """Bytes with no known structure (HS_SECKEY, unknown types)."""

    data: bytes = field(repr=False)

    def encode(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, data: bytes) -> "Opaque":
        return cls(bytes(data))


_VIEWS = {"admin": AdminRef, "site": SiteInfo, "vlist": VList, "key": PublicKey, "text": Text, "opaque": Opaque}

View = AdminRef | SiteInfo | VList | PublicKey | Text | Opaque


def decode_data(value_type: str, data: bytes) -> View:
    """The typed view of ``data`` for ``value_type``; WireError if malformed."""
    return _VIEWS[kind_of(value_type)].decode(data)
