"""One write against Redis: the view a transaction reads and writes through,
and the Lua script that commits it (see :mod:`registry.redis_backend`)."""

from __future__ import annotations

import zlib
from typing import Any, Callable, Collection, Sequence

import cbor2

from . import redis_keys as K
from .backend import Row, Tx
from .errors import CorruptRecord
from .model import AdminIdentity, AuditEntry, PrefixInfo

PREFIX_FIELDS = (b"prefix", b"owner", b"credit_code", b"contact", b"state", b"created")

# The commit. KEYS: every key checked or written. ARGV: the write's token, the
# number of checks, then (key index, version seen) per check, then the writes:
# (name, key index, expected type, argument count, arguments...). Returns 1
# when written, 2 when this very commit was written before (a client retry
# after a lost reply finds its own token), or the key of a changed record.
COMMIT = """
local token = ARGV[1]
local checks = tonumber(ARGV[2])
local a = 3
local changed = nil
for i = 1, checks do
  local k = KEYS[tonumber(ARGV[a])]
  local have = redis.pcall('HGET', k, 'v')
  if type(have) == 'table' then return {err = 'WRONGTYPE ' .. k} end
  if have == token then return 2 end
  if changed == nil and (have or '') ~= ARGV[a + 1] then changed = k end
  a = a + 2
end
if changed then return changed end
local first = a
local typed = {}
while a <= #ARGV do
  local i, want = ARGV[a + 1], ARGV[a + 2]
  if typed[i] == nil then
    local t = redis.call('TYPE', KEYS[tonumber(i)])['ok']
    if t ~= 'none' and t ~= want then return {err = 'WRONGTYPE ' .. KEYS[tonumber(i)]} end
    typed[i] = true
  end
  a = a + 4 + tonumber(ARGV[a + 3])
end
a = first
while a <= #ARGV do
  local op, k, n = ARGV[a], KEYS[tonumber(ARGV[a + 1])], tonumber(ARGV[a + 3])
  local from, to = a + 4, a + 3 + n
  a = to + 1
  if op == 'PUT' then
    redis.call('DEL', k)
    redis.call('HSET', k, 'v', token, unpack(ARGV, from, to))
  elseif op == 'BUMP' then
    if redis.call('EXISTS', k) == 1 then redis.call('HSET', k, 'v', token) end
  else
    redis.call(op, k, unpack(ARGV, from, to))
  end
end
return 1
"""

TYPES = {"PUT": "hash", "BUMP": "hash", "DEL": "hash", "HSET": "hash", "HDEL": "hash", "ZADD": "zset",
         "ZREMRANGEBYLEX": "zset", "XADD": "stream", "INCRBY": "string"}      # what each write expects to find


def crc(handle: bytes, blob: bytes, ready: bytes | None) -> bytes:
    return b"%08x" % zlib.crc32(ready or b"", zlib.crc32(blob, zlib.crc32(handle)))


def admin_of(data: bytes) -> AdminIdentity:
    handle, index, scope, phash = cbor2.loads(data)
    return AdminIdentity(handle, index, scope, phash)


def prefix_of(values: list) -> PrefixInfo | None:
    if values[0] is None:
        return None
    p, owner, credit, contact, state, created = (v.decode() if v is not None else "" for v in values)
    return PrefixInfo(p, owner, credit, contact, state, int(created or 0))


class RedisTx(Tx):
    """One attempt of a write: reads go through ``client`` (redis-py's, sync)
    and record each record's version (``checks``); writes are kept (``ops``,
    ``counts``, ``audit``) for the backend to commit in one script.
    ``corrupt(key)`` is the error for a key holding what the node did not write."""

    def __init__(self, client: Any, now: float, corrupt: Callable[[str], CorruptRecord]) -> None:
        self._client = client
        self._corrupt = corrupt
        self.now = now
        self.checks: dict[str, bytes] = {}                   # record key -> version seen (b"": absent)
        self.ops: list[tuple[str, str, list]] = []
        self.counts: dict[str, int] = {}
        self.audit: list[AuditEntry] = []
        self._prefix_keys: dict[str, str] = {}               # handle key -> its prefix key, as read

    def _pipe(self):
        return self._client.pipeline(transaction=False)

    def _seen(self, key: str, version: bytes | None) -> None:
        self.checks.setdefault(key, version or b"")

    def rows(self, keys: Collection[str]) -> dict[str, Row]:
        keys = list(keys)
        pipe = self._pipe()
        for k in keys:
            pipe.hmget(K.row(k), "h", "p", "b", "v")
        out = {}
        for k, (h, p, b, v) in zip(keys, pipe.execute()):
            self._seen(K.row(k), v)
            if h is None or p is None or b is None:
                if v is not None or h is not None:
                    raise self._corrupt(k)
                continue
            self._prefix_keys[k] = p.decode()
            out[k] = Row(k, h.decode(), p.decode(), b)
        return out

    def put_rows(self, rows: Sequence[Row]) -> None:
        ops = self.ops
        for r in rows:
            handle = r.handle.encode()
            fields = [b"h", handle, b"p", r.prefix_key, b"b", r.blob, b"c", crc(handle, r.blob, r.ready)]
            if r.ready is not None:
                fields += [b"r", r.ready]
            tag = K.shard(r.key)
            ops.append(("PUT", K.row(r.key, tag), fields))
            ops.append(("ZADD", K.listing(tag, r.prefix_key), [0, K.list_member(r.key, r.handle)]))
            self._prefix_keys[r.key] = r.prefix_key

    def delete_row(self, key: str) -> None:
        tag = K.shard(key)
        prefix_key = self._prefix_keys.get(key)
        if prefix_key is None:
            prefix_key = (self._client.hget(K.row(key, tag), "p") or b"").decode() or key.partition("/")[0]
        self.ops += [("DEL", K.row(key, tag), []), ("DEL", K.admins(key, tag), []),
                     ("ZREMRANGEBYLEX", K.listing(tag, prefix_key), [f"[{key}\x00", f"({key}\x01"])]

    def prefix(self, key: str) -> PrefixInfo | None:
        values = self._client.hmget(K.prefix(key), *PREFIX_FIELDS, b"v")
        self._seen(K.prefix(key), values[-1])
        return prefix_of(values[:-1])

    def prefix_states(self, keys: Collection[str]) -> dict[str, str]:
        keys = list(keys)
        pipe = self._pipe()
        for k in keys:
            pipe.hmget(K.prefix(k), "state", "v")
        out = {}
        for k, (state, v) in zip(keys, pipe.execute()):
            self._seen(K.prefix(k), v)
            if state is not None:
                out[k] = state.decode()
        return out

    def put_prefix(self, key: str, info: PrefixInfo) -> None:
        values = (info.prefix, info.owner, info.credit_code, info.contact, info.state, str(info.created))
        self.ops.append(("PUT", K.prefix(key), [x for pair in zip(PREFIX_FIELDS, values) for x in pair]))
        self.ops.append(("ZADD", K.PREFIXES, [0, key]))

    def admins(self, handle_keys: Collection[str]) -> dict[str, list[AdminIdentity]]:
        keys = list(handle_keys)
        pipe = self._pipe()
        for k in keys:
            pipe.hgetall(K.admins(k))
            pipe.hget(K.row(k), "v")
        replies = pipe.execute()
        out: dict[str, list[AdminIdentity]] = {}
        for i, k in enumerate(keys):
            found, version = replies[2 * i], replies[2 * i + 1]
            self._seen(K.row(k), version)
            if found:
                try:
                    out[k] = sorted((admin_of(v) for v in found.values()), key=lambda a: a.index)
                except (ValueError, TypeError, cbor2.CBORDecodeError):
                    raise self._corrupt(k) from None
        return out

    def put_admin(self, handle_key: str, admin: AdminIdentity) -> None:
        data = cbor2.dumps([admin.handle, admin.index, admin.scope, admin.password_hash])
        self.ops += [("HSET", K.admins(handle_key), [str(admin.index), data]), ("BUMP", K.row(handle_key), [])]

    def delete_admin(self, handle_key: str, index: int) -> None:
        self.ops += [("HDEL", K.admins(handle_key), [str(index)]), ("BUMP", K.row(handle_key), [])]

    def meta(self, name: str) -> Any:
        value, version = self._client.hmget(K.meta(name), "value", "v")
        self._seen(K.meta(name), version)
        return cbor2.loads(value) if value is not None else None

    def set_meta(self, name: str, value: Any) -> None:
        self.ops.append(("PUT", K.meta(name), [b"value", cbor2.dumps(value)]))

    def add_count(self, name: str, delta: int) -> None:
        if delta:
            self.counts[name] = self.counts.get(name, 0) + delta

    def log(self, entries: Sequence[AuditEntry]) -> None:
        self.audit += entries
