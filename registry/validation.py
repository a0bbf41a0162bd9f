"""Checking what callers hand the registry, before any transaction starts,
so that nothing is ever half-written."""

from __future__ import annotations

from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any, Sequence

from protocol.identifier import Handle, InvalidHandle, parse_handle, parse_prefix
from protocol.values import MAX_INDEX, HandleValue, Reference, is_secret_type, validate_values

from .errors import InvalidHandleError, InvalidValue
from .model import PREFIX_STATES, AdminIdentity
from .secrets import is_password_hash

NODE_PREFIX_KEY = "0.na"


def parse(handle: Any) -> Handle:
    try:
        return parse_handle(handle)
    except InvalidHandle as exc:
        raise InvalidHandleError(str(exc)) from None


def parse_prefix_text(prefix: Any) -> str:
    try:
        return parse_prefix(prefix)
    except InvalidHandle as exc:
        raise InvalidHandleError(str(exc)) from None


def is_u32(x: Any) -> bool:
    return type(x) is int and 0 <= x <= MAX_INDEX


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """How large a value and a record may be (``[registry]`` settings)."""
    max_value_bytes: int = 64 * 1024
    max_record_bytes: int = 1024 * 1024


def value_size(v: HandleValue) -> int:
    """What a value weighs against the limits: its type, data and references, in bytes."""
    vtype = v.type
    size = (len(vtype) if vtype.isascii() else len(vtype.encode("utf-8", "surrogatepass"))) + len(v.data)
    if v.references:
        for r in v.references:
            size += 4 + len(r.handle.encode("utf-8", "surrogatepass"))
    return size


def check_sizes(values: Sequence[HandleValue], limits: SizeLimits) -> None:
    total = 0
    for v in values:
        size = value_size(v)
        if size > limits.max_value_bytes:
            raise InvalidValue(f"value {v.index} is {size} bytes; the most a value may hold is "
                               f"{limits.max_value_bytes} (registry.max_value_bytes)")
        total += size
    if total > limits.max_record_bytes:
        raise InvalidValue(f"the values come to {total} bytes; the most an identifier may hold is "
                           f"{limits.max_record_bytes} (registry.max_record_bytes)")


_by_index = attrgetter("index")


def clean_values(values: Any, limits: SizeLimits | None = None) -> list[HandleValue]:
    """Type-checked, validated values sorted by index (never stamped here: see
    encode_values), within ``limits`` when given."""
    if isinstance(values, (str, bytes, HandleValue)):
        raise InvalidValue("values must be a sequence of HandleValue")
    out: list[HandleValue] = []
    try:
        for v in values:
            if type(v) is not HandleValue:
                raise InvalidValue(f"not a HandleValue: {type(v).__name__}")
            index, vtype, ttl, stamp = v.index, v.type, v.ttl, v.timestamp
            # is_u32 of index, ttl and timestamp, written out: this runs for every value written
            if type(vtype) is not str or type(index) is not int or not 0 <= index <= MAX_INDEX \
                    or type(ttl) is not int or not 0 <= ttl <= MAX_INDEX \
                    or type(stamp) is not int or not 0 <= stamp <= MAX_INDEX \
                    or type(v.ttl_absolute) is not bool or type(v.permissions) is not int:
                raise InvalidValue(f"value {v.index!r} has a field of the wrong type")
            if not vtype.isascii() and not _utf8(vtype):
                raise InvalidValue(f"value {v.index} type is not valid Unicode")
            if type(v.data) is not bytes:
                if not isinstance(v.data, (bytes, bytearray, memoryview)):
                    raise InvalidValue(f"value {v.index} data must be bytes")
                v = replace(v, data=bytes(v.data))
            if v.references and not all(type(r) is Reference and type(r.handle) is str and _utf8(r.handle)
                                        and is_u32(r.index)
                                        for r in v.references):
                raise InvalidValue(f"value {v.index} has a malformed reference")
            out.append(v)
        validate_values(out)
        if limits is not None:
            check_sizes(out, limits)
    except TypeError:
        raise InvalidValue("values must be a sequence of HandleValue") from None
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None
    out.sort(key=_by_index)
    return out


def check_admin(admin: Any, values: Sequence[HandleValue] | None = None) -> Handle:
    if type(admin) is not AdminIdentity:
        raise InvalidValue("admin must be an AdminIdentity")
    if not is_u32(admin.index) or admin.index == 0:
        raise InvalidValue(f"admin index {admin.index!r} out of range")
    if not is_password_hash(admin.password_hash):
        raise InvalidValue("admin password_hash is not a scrypt hash")
    if values is not None and not any(v.index == admin.index and is_secret_type(v.type) for v in values):
        raise InvalidValue(f"admin values need a secret (HS_SECKEY) value at index {admin.index}")
    return parse(admin.handle)


def check_state(state: Any) -> str:
    if state not in PREFIX_STATES:
        raise InvalidValue(f"prefix state must be one of {PREFIX_STATES}, got {state!r}")
    return state
