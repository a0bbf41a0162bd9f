"""Where the Redis backend keeps things: key names, shards and store URLs.

Every key is ``idn:{TAG}:...``. The part in braces is a Redis Cluster hash
tag, so every key with the same tag lives in the same slot and one Lua
script may write them all atomically.

* An identifier's tag is its **shard**: one of :data:`SHARDS` tags chosen by
  a CRC-32 of its key. Its row, its admin identities and its entry in its
  prefix's listing carry that tag, and so do the audit stream and the
  counter its shard's writes append to and count on. A write of one
  identifier is one script on one slot: the record, its audit entries and
  the count change together or not at all, on a single server and on a
  cluster alike.
* Node-wide things take the tag ``g``: the meta values, the prefix rows and
  their listing, and the identifiers under ``0.NA`` (the prefix records and
  their admin identities). Creating a prefix, which writes its row and its
  admin identifier, is then one slot too. These are administrative writes,
  a few per prefix, never per identifier.

No key is touched by every write: the audit log and the counter are one per
shard, and a prefix's listing is one sorted set per shard. A listing page
merges the shards' sets in key order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import StoreUnavailable

SHARDS = 64
GLOBAL = "g"
NODE_SUFFIX = "0.na/"            # keys of the prefix records (lower-case, as handle keys are)
_TAGS = tuple(f"{i:02x}" for i in range(SHARDS))
ALL_TAGS = _TAGS + (GLOBAL,)


def shard(key: str) -> str:
    """The hash tag of the identifier whose handle key is ``key``."""
    if key.startswith(NODE_SUFFIX):
        return GLOBAL
    return _TAGS[zlib.crc32(key.encode("utf-8", "surrogatepass")) % SHARDS]


def tag_of(redis_key: str) -> str:
    return redis_key[5:redis_key.index("}")]


def row(key: str, tag: str | None = None) -> str:
    return f"idn:{{{tag or shard(key)}}}:h:{key}"


def admins(key: str, tag: str | None = None) -> str:
    return f"idn:{{{tag or shard(key)}}}:a:{key}"


def listing(tag: str, prefix_key: str) -> str:
    return f"idn:{{{tag}}}:l:{prefix_key}"


def audit(tag: str) -> str:
    return f"idn:{{{tag}}}:audit"


def counter(tag: str, name: str) -> str:
    return f"idn:{{{tag}}}:n:{name}"


def prefix(key: str) -> str:
    return f"idn:{{{GLOBAL}}}:p:{key}"


PREFIXES = f"idn:{{{GLOBAL}}}:prefixes"          # sorted set of prefix keys


def meta(name: str) -> str:
    return f"idn:{{{GLOBAL}}}:m:{name}"


def list_member(key: str, handle: str) -> str:
    """A listing entry: sorts by key (no key holds NUL) and carries the text."""
    return f"{key}\x00{handle}"


# -- audit sequence numbers ----------------------------------------------------------------
# An audit entry's seq packs its stream id "ms-n" and its stream's index, so
# entries of different shards never share a number and sort by time, then by
# shard: 39 bits of milliseconds since 2024 (17 years), 17 of n, 7 of shard.
EPOCH_MS = 1_704_067_200_000
_N_BITS, _TAG_BITS = 17, 7
TAG_INDEX = {t: i for i, t in enumerate(ALL_TAGS)}


def seq_of(stream_id: bytes | str, tag: str) -> int:
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, n = text.partition("-")
    n_part = min(int(n or 0), (1 << _N_BITS) - 1)
    return ((int(ms) - EPOCH_MS) << (_N_BITS + _TAG_BITS)) | (n_part << _TAG_BITS) | TAG_INDEX[tag]


def range_start(since_seq: int, tag: str) -> str:
    """The XRANGE start, in ``tag``'s stream, of the entries numbered after ``since_seq``."""
    if since_seq <= 0:
        return "-"
    ms = (since_seq >> (_N_BITS + _TAG_BITS)) + EPOCH_MS
    n = (since_seq >> _TAG_BITS) & ((1 << _N_BITS) - 1)
    after_tag = since_seq & ((1 << _TAG_BITS) - 1)
    return f"{ms}-{n}" if TAG_INDEX[tag] > after_tag else f"({ms}-{n}"


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """How the Redis backend writes (``[store]`` settings)."""
    replicas: int = 0                 # replicas each write waits for (WAIT); 0: the master's copy only
    replica_timeout: float = 1.0      # seconds WAIT may take
    timeout: float = 1.0              # socket timeout per command
    deadline: float = 5.0             # a write that cannot commit by then fails (RC 3)
    writers: int = 4                  # writer threads
    max_reads_waiting: int = 16_384   # reads waiting on Redis at most; past it a read fails at once (RC 3)


# -- URLs --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed ``redis://``, ``rediss://`` or ``redis+cluster://`` store URL."""
    cluster: bool
    nodes: tuple[tuple[str, int], ...]
    db: int
    tls: bool
    username: str | None
    password: str | None

    def __repr__(self) -> str:           # no password in logs
        scheme = "redis+cluster" if self.cluster else ("rediss" if self.tls else "redis")
        return f"{scheme}://" + ",".join(f"{h}:{p}" for h, p in self.nodes) + ("" if self.cluster else f"/{self.db}")


def parse_url(url: str) -> RedisTarget:
    """``redis://[user:pass@]host:port/db``, ``rediss://...`` (TLS) or
    ``redis+cluster://host:port,host:port`` (``rediss+cluster://`` with TLS)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        raise StoreUnavailable(f"not a Redis store URL: {url!r}")
    cluster = scheme.endswith("+cluster")
    tls = scheme.startswith("rediss")
    creds, at, hosts = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = creds.partition(":")
        username, password = (unquote(user) or None), (unquote(pw) if colon else None)
    hosts, _, path = hosts.partition("/")
    nodes = []
    for part in hosts.split(","):
        try:
            parsed = urlsplit(f"//{part}")
            host, port = parsed.hostname, parsed.port or 6379
        except ValueError:
            host = None
        if not host:
            raise StoreUnavailable(f"bad host in Redis store URL {url!r}: {part!r}")
        nodes.append((host, port))
    if not cluster and len(nodes) != 1:
        raise StoreUnavailable(f"a redis:// URL names one server; use redis+cluster:// for several: {url!r}")
    db = 0
    if path.strip("/"):
        if cluster or not path.strip("/").isdigit():
            raise StoreUnavailable(f"bad database number in Redis store URL {url!r}")
        db = int(path.strip("/"))
    return RedisTarget(cluster, tuple(nodes), db, tls, username, password)


# -- failed-login counters (shared lock-out) ------------------------------------------------
FAIL_BUCKETS = 64                 # per shard: 64 x 64 bucket hashes
FAIL_WAYS = 8                     # sources one bucket holds; a newcomer evicts the stalest


def failure_bucket(source: str) -> str:
    """The bucket hash of a source's failure count (spread over every shard)."""
    h = zlib.crc32(source.encode("utf-8", "surrogatepass"))
    return f"idn:{{{_TAGS[h % SHARDS]}}}:fail:{(h // SHARDS) % FAIL_BUCKETS:02x}"
