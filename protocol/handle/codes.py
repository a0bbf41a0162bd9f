"""Numbers of the Handle protocol: opCodes, opFlags, envelope flags, hash codes,
protocol versions. Response codes are :class:`protocol.codes.RC`.

Unknown values are kept, never rejected: ``OpCode(9999)`` is a pseudo-member
named ``UNKNOWN_9999``, ``OpFlag``/``EnvFlag`` keep unknown bits, and
:func:`as_rc` returns the plain ``int`` for a response code RC does not name.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from protocol.codes import RC

Version = tuple[int, int]

MIN_VERSION: Version = (2, 1)    # oldest envelope version accepted
MAX_VERSION: Version = (2, 11)   # newest implemented (Handle.Net 9)


class OpCode(IntEnum):
    """RFC 3652 section 2.2.2.1, Handle.Net ``AbstractMessage.OC_*`` and the
    Chinese SDKs' login operations."""

    RESERVED = 0
    RESOLUTION = 1
    GET_SITE_INFO = 2
    CREATE_HANDLE = 100
    DELETE_HANDLE = 101
    ADD_VALUE = 102
    REMOVE_VALUE = 103
    MODIFY_VALUE = 104
    LIST_HANDLES = 105
    CHALLENGE_RESPONSE = 200
    VERIFY_CHALLENGE = 201
    HOME_PREFIX = 300
    UNHOME_PREFIX = 301
    LIST_HOMED_PREFIXES = 302
    SESSION_SETUP = 400
    SESSION_TERMINATE = 401
    SESSION_EXCHANGE_KEY = 402
    GET_NEXT_TXN_ID = 1000
    RETRIEVE_TXN_LOG = 1001
    DUMP_HANDLES = 1002
    BACKUP_SERVER = 1003
    LOGIN_PASSWORD = 2000
    LOGIN_KEY = 2001

    @classmethod
    def _missing_(cls, value: object) -> "OpCode | None":
        # A pseudo-member per call (not cached: hostile input must not grow a table).
        if isinstance(value, int) and 0 <= value <= 0xFFFFFFFF:
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None


class OpFlag(IntFlag):
    """Header opFlags; bits nobody names are kept (IntFlag boundary KEEP)."""

    AT = 0x80000000     # authoritative: answer from a primary, no cache
    CT = 0x40000000     # certified: sign the response
    ENC = 0x20000000    # encrypt the response
    REC = 0x10000000    # recursive
    CA = 0x08000000     # cache authenticated
    CN = 0x04000000     # continuous: more messages follow
    KC = 0x02000000     # keep connection
    PO = 0x01000000     # public values only
    RD = 0x00800000     # return request digest (in a response: digest present)
    OVRW = 0x00400000   # overwrite when exists
    MINT = 0x00200000   # mint a new suffix (create)
    DNRF = 0x00100000   # do not refer
    RECURSIVE_AUTH = 0x4   # vendor bits seen in the Chinese system
    TRUSTED_QUERY = 0x2
    TRUSTED_RESULT = 0x1


class EnvFlag(IntFlag):
    """Envelope flag byte without its low two bits (the suggested major version)."""

    COMPRESSED = 0x80
    ENCRYPTED = 0x40
    TRUNCATED = 0x20


class HashCode(IntEnum):
    """One-byte hash/MAC identifiers (Handle.Net ``Common.HASH_CODE_*``)."""

    MD5_OLD_FORMAT = 0   # u32-length-prefixed MD5, protocol 2.0 and the 201 request
    MD5 = 1
    SHA1 = 2
    SHA256 = 3
    HMAC_SHA1 = 0x12
    HMAC_SHA256 = 0x13
    PBKDF2_HMAC_SHA1 = 0x22


DIGEST_SIZES = {HashCode.MD5: 16, HashCode.SHA1: 20, HashCode.SHA256: 32}


def as_rc(value: int) -> "RC | int":
    """The RC member for ``value``, or ``value`` itself when RC does not name it."""
    try:
        return RC(value)
    except ValueError:
        return value


def at_least(version: Version, wanted: Version) -> bool:
    """``version >= wanted`` for (major, minor) pairs."""
    return tuple(version) >= tuple(wanted)


def digest_code_for(version: Version) -> HashCode:
    """Request-digest hash a Handle.Net server uses in a reply of ``version``:
    SHA-256 from 2.7, SHA-1 before (``AbstractResponse.takeDigestOfRequest``)."""
    return HashCode.SHA256 if at_least(version, (2, 7)) else HashCode.SHA1
