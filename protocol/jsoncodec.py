"""Handle.Net v9 JSON REST shapes for handle values, both directions.

Plain dict/list structures only (no I/O): the caller serialises them with
orjson or cbor2. Shapes follow Handle.Net's ``GsonUtility`` (the server's
``/api/handles`` output and what it accepts), plus what pyhandle 1.5 sends.

Public API:

``value_to_json(value) -> dict``
    ``{"index", "type", "data": {"format", "value"}, ["permissions"], "ttl",
    ["timestamp"], ["references"]}``. ``data.format`` is "admin" (HS_ADMIN),
    "vlist" (HS_VLIST), "site" (HS_SITE, HS_SITE.PREFIX, HS_NA_DELEGATE) or
    "key" (DSA/RSA HS_PUBKEY) when the data parses and the structured form
    gives back exactly the same bytes; otherwise "string" for text that does
    not look binary, else "base64". ``permissions`` ("1110"-style, admin read,
    admin write, public read, public write) only when not the default; an
    absolute ``ttl`` and the ``timestamp`` are ISO 8601 UTC with ``Z``; a zero
    timestamp is left out, as Handle.Net does (stores stamp every write, and
    pyhandle's modify_handle_value needs the field).
    Refuses (ValueError) to serialise a secret (HS_SECKEY) value.
``value_from_json(obj) -> HandleValue``
    accepts ``data`` as a bare string or ``{"format": "string" | "base64" |
    "hex" | "admin" | "vlist" | "site" | "key", "value": ...}``; defaults as
    Handle.Net (ttl 86400 relative, permissions admin read/write + public read).
``record_to_json(handle, values) -> dict``
    ``{"responseCode": 1, "handle", "values": [...]}``, secrets left out.
``values_from_json(obj, handle=None) -> list[HandleValue]``
    a PUT body: ``{"values": [...]}`` (its optional ``"handle"`` must match
    ``handle`` when given), a bare list, or a single value object; checked with
    :func:`protocol.values.validate_values`.
``format_timestamp(seconds) -> str`` / ``parse_timestamp(text) -> int``

Every malformed input raises :class:`JsonValueError` with the path of the
offending field (``values[2].data.value: ...``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from datetime import datetime, timedelta, timezone

from protocol.identifier import handle_key
from protocol.values import (
    DEFAULT_PERMS, DEFAULT_TTL, MAX_INDEX, HandleValue, Reference, is_secret_type, validate_values,
)
from protocol.valuetypes import (
    ALL_ADMIN_PERMS, AdminRef, Interface, PublicKey, ServerInfo, SiteInfo, VList, WireError,
    key_trailer, kind_of,
)

__all__ = [
    "JsonValueError", "value_to_json", "value_from_json", "record_to_json", "values_from_json",
    "format_timestamp", "parse_timestamp",
]

U32 = 0xFFFFFFFF
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_BINARY_BYTE = re.compile(rb"[\x00-\x08\x14-\x1f\x7f]")  # Handle.Net Util.looksLikeBinary
_B64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,20}")
_PROTOCOLS = {"UDP": Interface.UDP, "TCP": Interface.TCP, "HTTP": Interface.HTTP, "HTTPS": Interface.HTTPS}
_PROTOCOL_NAMES = {v: k for k, v in _PROTOCOLS.items()}


class JsonValueError(ValueError):
    """A JSON handle value (or list of them) is malformed (Handle RC 202)."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


# ---------------------------------------------------------------- small readers

def _int(x: object, where: str, lo: int = 0, hi: int = U32) -> int:
    """An integer field; like Gson's getAsInt also a decimal string or an
    integral number, never a boolean."""
    if isinstance(x, bool):
        raise JsonValueError(where, "expected an integer, got a boolean")
    if isinstance(x, float):
        if not x.is_integer():
            raise JsonValueError(where, f"expected an integer, got {x!r}")
        x = int(x)
    elif isinstance(x, str):
        if not _DECIMAL.fullmatch(x):
            raise JsonValueError(where, f"expected an integer, got {x[:40]!r}")
        x = int(x)
    elif not isinstance(x, int):
        raise JsonValueError(where, f"expected an integer, got {type(x).__name__}")
    if not lo <= x <= hi:
        raise JsonValueError(where, f"{x} out of range {lo}..{hi}")
    return x


def _str(x: object, where: str) -> str:
    if not isinstance(x, str):
        raise JsonValueError(where, f"expected a string, got {type(x).__name__}")
    return x


def _bool(x: object, where: str) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, str) and x.lower() in ("true", "false"):
        return x.lower() == "true"
    raise JsonValueError(where, f"expected a boolean, got {type(x).__name__}")


def _obj(x: object, where: str) -> dict:
    if not isinstance(x, dict):
        raise JsonValueError(where, f"expected an object, got {type(x).__name__}")
    return x


def _list(x: object, where: str) -> list:
    if not isinstance(x, list):
        raise JsonValueError(where, f"expected a list, got {type(x).__name__}")
    return x


def _need(obj: dict, key: str, where: str) -> object:
    if obj.get(key) is None:
        raise JsonValueError(f"{where}.{key}", "missing")
    return obj[key]


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonValueError(where, "text is not valid Unicode (lone surrogate)") from None


def _b64decode(text: object, where: str) -> bytes:
    """Standard or URL-safe base64, padding optional, whitespace ignored (as
    commons-codec's decodeBase64, but refusing stray characters)."""
    s = re.sub(r"\s+", "", _str(text, where))
    if not _B64.fullmatch(s):
        raise JsonValueError(where, "not base64")
    s = s.rstrip("=")
    if len(s) % 4 == 1:
        raise JsonValueError(where, "base64 has a bad length")
    s = s.replace("-", "+").replace("_", "/") + "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except binascii.Error:
        raise JsonValueError(where, "not base64") from None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unsigned(data: bytes) -> bytes:
    """Big-endian magnitude without leading zeros (at least one byte)."""
    return data.lstrip(b"\x00") or b"\x00"


# ---------------------------------------------------------------- timestamps

def format_timestamp(seconds: int) -> str:
    """Unix seconds as Handle.Net prints them: ``2026-11-27T10:00:00Z``."""
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: object, where: str = "timestamp") -> int:
    """ISO 8601 (``Z`` or an offset; no zone means UTC) to unix seconds.
    An integer is taken as unix seconds already."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return _int(text, where)
    s = _str(text, where).strip()
    try:
        dt = datetime.fromisoformat(s[:-1] + "+00:00" if s[-1:] in "zZ" and s else s)
    except ValueError:
        raise JsonValueError(where, f"not an ISO 8601 time: {s[:40]!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        seconds = (dt - _EPOCH) // timedelta(seconds=1)
    except OverflowError:
        raise JsonValueError(where, "time out of range") from None
    if not 0 <= seconds <= U32:
        raise JsonValueError(where, "time out of range 1970..2106")
    return seconds


# ---------------------------------------------------------------- data: admin, vlist

def _admin_to_json(admin: AdminRef) -> dict:
    out = {"handle": admin.handle, "index": admin.index, "permissions": format(admin.permissions, "012b")}
    if admin.legacy_length:
        out["legacyByteLength"] = True
    return out


def _truthy(x: object) -> bool:
    """Handle.Net's isTruthy for permission arrays."""
    if x is None:
        return False
    if isinstance(x, (dict, list)):
        return True
    if isinstance(x, str):
        return x != ""
    return bool(x)


def _admin_perms(x: object, where: str) -> int:
    if x is None or x is False:
        return 0
    if x is True:
        return ALL_ADMIN_PERMS
    if isinstance(x, list):
        return sum(1 << i for i, item in enumerate(x[:12]) if _truthy(item))
    if isinstance(x, (int, float)):
        return _int(x, where, 0, 0xFFFF)
    s = _str(x, where).strip()
    if s == "*":
        return ALL_ADMIN_PERMS
    if not re.fullmatch(r"[01]{1,16}", s):
        raise JsonValueError(where, f"expected a string of up to 16 '0'/'1', got {s[:40]!r}")
    return int(s, 2)


def _admin_from_json(x: object, where: str) -> bytes:
    obj = _obj(x, where)
    handle = _str(_need(obj, "handle", where), f"{where}.handle")
    index = _int(_need(obj, "index", where), f"{where}.index")
    perms = _admin_perms(obj.get("permissions"), f"{where}.permissions")
    legacy = obj.get("legacyByteLength")
    legacy = False if legacy is None else _bool(legacy, f"{where}.legacyByteLength")
    _utf8(handle, f"{where}.handle")
    return AdminRef(handle, index, perms, legacy).encode()


def _ref_from_json(x: object, where: str) -> Reference:
    obj = _obj(x, where)
    handle = _str(_need(obj, "handle", where), f"{where}.handle")
    _utf8(handle, f"{where}.handle")
    return Reference(handle, _int(_need(obj, "index", where), f"{where}.index"))


def _refs_to_json(refs: tuple[Reference, ...]) -> list:
    return [{"handle": r.handle, "index": r.index} for r in refs]


def _vlist_from_json(x: object, where: str) -> bytes:
    items = _list(x, where)
    return VList(tuple(_ref_from_json(item, f"{where}[{i}]") for i, item in enumerate(items))).encode()


# ---------------------------------------------------------------- data: key

def _key_to_json(key: PublicKey) -> dict:
    if not key.known or key.rest != key_trailer(key.key_type) or key.key_type == "DH_PUB_KEY":
        raise JsonValueError("", "key has no JSON form")
    parts = dict(zip(("q", "p", "g", "y") if key.key_type == "DSA_PUB_KEY" else ("e", "n"), key.parts))
    if key.key_type == "RSA_PUB_KEY":
        return {"kty": "RSA", "n": _b64url(_unsigned(parts["n"])), "e": _b64url(_unsigned(parts["e"]))}
    return {"kty": "DSA", **{k: _b64url(_unsigned(parts[k])) for k in ("y", "p", "q", "g")}}


def _key_from_json(x: object, where: str) -> bytes:
    obj = _obj(x, where)
    kty = _str(_need(obj, "kty", where), f"{where}.kty").upper()
    names = {"RSA": ("n", "e"), "DSA": ("y", "p", "q", "g")}.get(kty)
    if names is None:
        raise JsonValueError(f"{where}.kty", f"unsupported key type {kty[:20]!r} (RSA or DSA)")
    numbers = {n: int.from_bytes(_b64decode(_need(obj, n, where), f"{where}.{n}"), "big") for n in names}
    return PublicKey.from_numbers(f"{kty}_PUB_KEY", numbers).encode()


# ---------------------------------------------------------------- data: site

def _server_to_json(server: ServerInfo) -> dict:
    try:
        key = {"format": "key", "value": _checked(PublicKey, _key_to_json, _key_from_json, server.public_key)}
    except (WireError, JsonValueError):
        key = {"format": "base64", "value": base64.b64encode(server.public_key).decode("ascii")}
    return {
        "serverId": server.server_id,
        "address": server.address_text,
        "publicKey": key,
        "interfaces": [
            {"query": i.query, "admin": i.admin, "protocol": _PROTOCOL_NAMES.get(i.transport, i.transport),
             "port": i.port}
            for i in server.interfaces
        ],
    }


def _site_to_json(site: SiteInfo) -> dict:
    out: dict = {
        "version": site.data_version,
        "protocolVersion": f"{site.major}.{site.minor}",
        "serialNumber": site.serial,
        "primarySite": site.is_primary,
        "multiPrimary": site.multi_primary,
    }
    if site.hash_option != SiteInfo.HASH_BY_ALL:
        out["hashOption"] = site.hash_option
    if site.hash_filter:
        out["hashFilter"] = site.hash_filter
    out["attributes"] = [{"name": n, "value": v} for n, v in site.attributes]
    out["servers"] = [_server_to_json(s) for s in site.servers]
    return out


def _legacy_keys(obj: dict) -> tuple[dict, bool]:
    """Handle.Net's lowerCaseIfNeeded: old site JSON used ``ServerList``,
    ``Address``, ``Port``."""
    if any(k in obj for k in ("ServerList", "Address", "Port")):
        return {(k[:1].lower() + k[1:]): v for k, v in obj.items()}, True
    return obj, False


def _address(x: object, where: str) -> bytes:
    text = _str(x, where).strip()
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise JsonValueError(where, f"not an IP address: {text[:60]!r}") from None
    return addr.packed.rjust(16, b"\x00")


def _interface_from_json(x: object, where: str) -> Interface:
    obj, _ = _legacy_keys(_obj(x, where))
    query = _bool(_need(obj, "query", where), f"{where}.query")
    admin = _bool(_need(obj, "admin", where), f"{where}.admin")
    proto = _need(obj, "protocol", where)
    if isinstance(proto, str) and proto.upper() in _PROTOCOLS:
        transport = _PROTOCOLS[proto.upper()]
    else:
        transport = _int(proto, f"{where}.protocol", 0, 0xFF)
    port = _int(_need(obj, "port", where), f"{where}.port")
    return Interface((Interface.QUERY if query else 0) | (Interface.ADMIN if admin else 0), transport, port)


def _server_from_json(x: object, where: str) -> ServerInfo:
    obj, legacy = _legacy_keys(_obj(x, where))
    server_id = _int(_need(obj, "serverId", where), f"{where}.serverId")
    address = _address(_need(obj, "address", where), f"{where}.address")
    key = _need(obj, "publicKey", where)
    if legacy and isinstance(key, str):
        public_key = _hex(key, f"{where}.publicKey")
    else:
        public_key = _data_from_json(key, f"{where}.publicKey")
    intfs = obj.get("interfaces", obj.get("interfaceList"))
    intfs = [] if intfs is None else _list(intfs, f"{where}.interfaces")
    interfaces = tuple(_interface_from_json(item, f"{where}.interfaces[{i}]") for i, item in enumerate(intfs))
    return ServerInfo(server_id, address, public_key, interfaces)


def _attributes_from_json(x: object, where: str) -> tuple[tuple[str, str], ...]:
    out = []
    if isinstance(x, list):
        for i, item in enumerate(x):
            obj = _obj(item, f"{where}[{i}]")
            out.append((_str(_need(obj, "name", f"{where}[{i}]"), f"{where}[{i}].name"),
                        _str(_need(obj, "value", f"{where}[{i}]"), f"{where}[{i}].value")))
    else:
        for name, value in _obj(x, where).items():
            for v in value if isinstance(value, list) else [value]:
                out.append((name, _str(v, f"{where}.{name}")))
    for pair in out:
        for text in pair:
            _utf8(text, where)
    return tuple(out)


def _site_from_json(x: object, where: str) -> bytes:
    obj, _ = _legacy_keys(_obj(x, where))
    d = SiteInfo()
    major, minor = d.major, d.minor
    if obj.get("protocolVersion") is not None:
        text = _str(obj["protocolVersion"], f"{where}.protocolVersion")
        m = re.fullmatch(r"\s*([0-9]{1,3})\.([0-9]{1,3})\s*", text)
        if not m or int(m[1]) > 255 or int(m[2]) > 255:
            raise JsonValueError(f"{where}.protocolVersion", f"expected 'major.minor', got {text[:20]!r}")
        major, minor = int(m[1]), int(m[2])

    def opt(key: str, read, default):
        return default if obj.get(key) is None else read(obj[key], f"{where}.{key}")

    servers = obj.get("servers", obj.get("serverList"))
    servers = [] if servers is None else _list(servers, f"{where}.servers")
    hash_filter = opt("hashFilter", _str, "")
    _utf8(hash_filter, f"{where}.hashFilter")
    site = SiteInfo(
        servers=tuple(_server_from_json(s, f"{where}.servers[{i}]") for i, s in enumerate(servers)),
        attributes=opt("attributes", _attributes_from_json, ()),
        serial=opt("serialNumber", lambda v, w: _int(v, w, 0, 0xFFFF), 0),
        primary_mask=(SiteInfo.PRIMARY if opt("primarySite", _bool, False) else 0)
        | (SiteInfo.MULTI_PRIMARY if opt("multiPrimary", _bool, False) else 0),
        hash_option=opt("hashOption", lambda v, w: _int(v, w, 0, 0xFF), SiteInfo.HASH_BY_ALL),
        hash_filter=hash_filter,
        major=major,
        minor=minor,
        data_version=opt("version", lambda v, w: _int(v, w, 0, 0xFFFF), d.data_version),
    )
    return site.encode()


# ---------------------------------------------------------------- data: dispatch

def _hex(x: object, where: str) -> bytes:
    s = _str(x, where).strip()
    if not _HEX.fullmatch(s):
        raise JsonValueError(where, "not an even number of hex digits")
    return bytes.fromhex(s)


def _string_from_json(x: object, where: str) -> bytes:
    """Text; a JSON number counts as its decimal text (Gson's getAsString)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        x = str(_int(x, where, -(1 << 63), (1 << 63) - 1))
    return _utf8(_str(x, where), where)


_FROM_JSON = {
    "admin": _admin_from_json,
    "vlist": _vlist_from_json,
    "site": _site_from_json,
    "key": _key_from_json,
    "base64": _b64decode,
    "hex": _hex,
    "string": _string_from_json,
}

_STRUCTURED = {
    "admin": (AdminRef, _admin_to_json, _admin_from_json),
    "vlist": (VList, lambda v: _refs_to_json(v.refs), _vlist_from_json),
    "site": (SiteInfo, _site_to_json, _site_from_json),
    "key": (PublicKey, _key_to_json, _key_from_json),
}


def _data_from_json(x: object, where: str) -> bytes:
    if isinstance(x, (str, int, float)) and not isinstance(x, bool):
        return _string_from_json(x, where)
    obj = _obj(x, where)
    fmt = _str(_need(obj, "format", where), f"{where}.format").lower()
    read = _FROM_JSON.get(fmt)
    if read is None:
        raise JsonValueError(f"{where}.format", f"unknown format {fmt[:20]!r}")
    if "value" not in obj:
        raise JsonValueError(f"{where}.value", "missing")
    try:
        return read(obj["value"], f"{where}.value")
    except WireError as exc:  # a field the binary form cannot hold
        raise JsonValueError(f"{where}.value", str(exc)) from None


def _checked(view, to_json, from_json, data: bytes):
    """The structured JSON of ``data``, only if it encodes back to the very
    same bytes (else the caller falls back to string/base64, losing nothing)."""
    out = to_json(view.decode(data))
    if from_json(out, "") != data:
        raise JsonValueError("", "structured form is not exact")
    return out


def _data_to_json(value: HandleValue) -> dict:
    kind = kind_of(value.type)
    if kind in _STRUCTURED:
        try:
            return {"format": kind, "value": _checked(*_STRUCTURED[kind], value.data)}
        except (WireError, JsonValueError):
            pass
    data = value.data
    if not _BINARY_BYTE.search(data):
        try:
            return {"format": "string", "value": data.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"format": "base64", "value": base64.b64encode(data).decode("ascii")}


# ---------------------------------------------------------------- values

def value_to_json(value: HandleValue) -> dict:
    """One value as Handle.Net 9's server prints it (see the module docstring)."""
    if is_secret_type(value.type):
        raise ValueError(f"refusing to serialise secret value {value.index} ({value.type})")
    out: dict = {"index": value.index, "type": value.type, "data": _data_to_json(value)}
    if value.permissions != DEFAULT_PERMS:
        out["permissions"] = format(value.permissions & 0xF, "04b")
    out["ttl"] = format_timestamp(value.ttl) if value.ttl_absolute else value.ttl
    if value.timestamp:
        out["timestamp"] = format_timestamp(value.timestamp)
    if value.references:
        out["references"] = _refs_to_json(value.references)
    return out


def _value_perms(x: object, where: str) -> int:
    if isinstance(x, int) and not isinstance(x, bool):
        x = str(x)
    s = _str(x, where).strip()
    if s == "*":
        return 0xF
    if not re.fullmatch(r"[01]{1,4}", s):
        raise JsonValueError(where, f"expected up to 4 '0'/'1' (admin r/w, public r/w) or '*', got {s[:20]!r}")
    perms = int(DEFAULT_PERMS)
    for bit, ch in enumerate(reversed(s)):
        perms = perms | (1 << bit) if ch == "1" else perms & ~(1 << bit)
    return perms


def value_from_json(obj: object, where: str = "value") -> HandleValue:
    """One value from the JSON Handle.Net and pyhandle send; JsonValueError if bad."""
    obj = _obj(obj, where)
    index = _int(_need(obj, "index", where), f"{where}.index", 1, MAX_INDEX)
    vtype = _str(_need(obj, "type", where), f"{where}.type")
    if not vtype.strip():
        raise JsonValueError(f"{where}.type", "empty")
    _utf8(vtype, f"{where}.type")
    if "data" not in obj:
        raise JsonValueError(f"{where}.data", "missing")
    if obj["data"] is None:
        raise JsonValueError(f"{where}.data", "null")
    data = _data_from_json(obj["data"], f"{where}.data")
    perms = int(DEFAULT_PERMS)
    if obj.get("permissions") is not None:
        perms = _value_perms(obj["permissions"], f"{where}.permissions")
    ttl, absolute = DEFAULT_TTL, False
    if obj.get("ttl") is not None:
        if isinstance(obj["ttl"], str) and not _DECIMAL.fullmatch(obj["ttl"].strip()):
            ttl, absolute = parse_timestamp(obj["ttl"], f"{where}.ttl"), True
        else:
            ttl = _int(obj["ttl"], f"{where}.ttl")
    timestamp = 0
    if obj.get("timestamp") is not None:
        timestamp = parse_timestamp(obj["timestamp"], f"{where}.timestamp")
    refs: tuple[Reference, ...] = ()
    if obj.get("references") is not None:
        items = _list(obj["references"], f"{where}.references")
        refs = tuple(_ref_from_json(item, f"{where}.references[{i}]") for i, item in enumerate(items))
    return HandleValue(index, vtype, data, ttl, absolute, timestamp, perms, refs)


def record_to_json(handle: str, values, response_code: int = 1) -> dict:
    """A resolution answer: ``{"responseCode", "handle", "values"}``; secret
    values are left out."""
    return {
        "responseCode": int(response_code),
        "handle": handle,
        "values": [value_to_json(v) for v in values if not is_secret_type(v.type)],
    }


def _looks_like_value(obj: dict) -> bool:
    return all(k in obj for k in ("index", "type", "data"))


def values_from_json(obj: object, handle: str | None = None) -> list[HandleValue]:
    """The values of a PUT body (see the module docstring), validated."""
    if isinstance(obj, list):
        items, where = obj, "values"
    elif isinstance(obj, dict) and "values" in obj:
        body_handle = obj.get("handle")
        if handle is not None and body_handle is not None:
            if not isinstance(body_handle, str) or handle_key(body_handle) != handle_key(handle):
                raise JsonValueError("handle", f"body names {str(body_handle)[:80]!r}, not {handle!r}")
        items, where = ([] if obj["values"] is None else _list(obj["values"], "values")), "values"
    elif isinstance(obj, dict) and _looks_like_value(obj):
        return _validated([value_from_json(obj, "value")])
    else:
        raise JsonValueError("", "expected {\"values\": [...]}, a list of values or one value")
    return _validated([value_from_json(item, f"{where}[{i}]") for i, item in enumerate(items)])


def _validated(values: list[HandleValue]) -> list[HandleValue]:
    try:
        validate_values(values)
    except ValueError as exc:
        raise JsonValueError("values", str(exc)) from None
    return values
