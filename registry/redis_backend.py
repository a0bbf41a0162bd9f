"""The Redis backend: a single Redis or a Redis Cluster (storage only; the
rules are in :mod:`registry.rules`, the key layout in :mod:`registry.redis_keys`,
a write's view and its commit script in :mod:`registry.redis_tx`).

**Writes.** :meth:`RedisBackend.transact` runs ``fn(tx)`` on a writer thread
against a transaction view that reads straight from Redis, remembers the
version token of every record it read, and buffers every write. The commit
is one Lua script: it checks that no record read has changed since (each
record hash carries a fresh random token ``v`` per write, so a delete and a
re-create is a change too), checks every key it will write holds the type
it expects, and only then writes. A changed record means another writer got
there first: ``fn`` runs again on what is there now (optimistic concurrency;
``fn`` is plain code and may run again, see :mod:`registry.backend`). The
script either writes everything or nothing.

On a cluster a script may touch one slot only. Almost every write of the
rules touches one slot (one identifier and its shard's audit stream and
counter, or the node-wide keys; :mod:`registry.redis_keys`), and a batch
is split by shard (:meth:`batch_groups`): atomic per shard, which is per
identifier. Reads of another slot made in a write (a prefix's state, when an
identifier is written) are not re-checked at commit on a cluster. The one
write of two slots, creating a prefix (its admin identifier, then its row),
commits slot by slot with the node-wide slot last; if it stops between, the
admin identifier stands under a prefix that does not exist, where no write
can reach it, and creating the prefix again takes it over.

**Durability.** With ``replicas`` > 0 the script and a ``WAIT replicas
timeout`` go down one connection to the master of the slot: the write is
acknowledged only when that many replicas hold it. Fewer in time, and the
write is reported failed (it may still be there: the script ran).

**Reads** are async (redis.asyncio): a resolution is one pipelined round
trip for the record and its prefix's state. Each record carries a CRC of
what the node wrote; a record that fails it, or a key of the wrong type,
is reported corrupt for that identifier (RC 2) and logged.

**Failures.** Connection pools, timeouts and retries with exponential
backoff are redis-py's (``Retry``, ``ExponentialBackoff``); a write that
cannot commit within ``deadline`` seconds fails with StoreUnavailable
(RC 3, REST 503), and so does a read that cannot reach Redis, which the
cache stage answers from stale entries. MOVED, ASK, TRYAGAIN, CLUSTERDOWN
and READONLY (a failover under way) make the writer refresh the cluster's
slot map and try again until the deadline. A master that fails a write
otherwise (down, short of replicas) takes no writes for ``REST_SECONDS``;
a redirection (a slot moving) is no fault of the master and does not count.

**The change feed** is the audit streams, one per shard: every process polls
them every ``poll_interval`` seconds, from its own cursor per stream, so no
change is missed across reconnects. Order: per identifier (per shard) in
commit order; across shards by time only.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Callable, Collection, Sequence

import cbor2
import redis
import redis.asyncio as aredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError, ResponseError
from redis.retry import Retry

from . import redis_keys as K
from .backend import Backend, ReadRow
from .errors import CorruptRecord, StoreUnavailable
from .model import AdminIdentity, AuditEntry, PrefixInfo
from .redis_failures import RedisFailures
from .redis_faults import client_fault, moving, transient
from .redis_keys import RedisOptions
from .redis_tx import COMMIT, PREFIX_FIELDS, TYPES, RedisTx, admin_of, crc, prefix_of

log = logging.getLogger("idnode.registry.redis")

READ_BATCH = 256              # reads sent to Redis in one pipeline at most
REST_SECONDS = 1.0            # a master that failed a write is not written to for this long
FEED_BATCH = 10_000           # audit entries read per stream per look; a reader further behind starts over
_LIST_CHUNK = 64              # listing entries asked of one shard at a time
def _entry(stream_id: bytes, tag: str, f: dict) -> AuditEntry:
    return AuditEntry(K.seq_of(stream_id, tag), float(f[b"a"]), f[b"u"].decode(), f[b"o"].decode(), f[b"h"].decode(),
                      f[b"b"].decode(), f[b"f"].decode())



class RedisBackend(Backend):
    """A single Redis or a Redis Cluster (see the module docstring)."""

    def __init__(self, url: str, options: RedisOptions = RedisOptions()) -> None:
        self.target = K.parse_url(url)
        self.options = options
        self._sync: Any = None
        self._async: Any = None
        self._writer: ThreadPoolExecutor | None = None
        self._commit_script: Any = None
        self._resting: dict[str, float] = {}     # master name -> when it may be written to again
        self._pending: list[tuple[str, asyncio.Future]] = []     # reads waiting for this turn's pipeline
        self.reads_waiting = 0                   # reads asked for and not answered (bounded)
        self._batches: set[asyncio.Task] = set()
        self._failures = RedisFailures(self._reader)

    def __repr__(self) -> str:
        return repr(self.target)

    @property
    def cluster(self) -> bool:
        return self.target.cluster

    # -- lifecycle --------------------------------------------------------------
    def _client_kwargs(self, timeout: float) -> dict:
        t = self.target
        kw = dict(socket_timeout=timeout, socket_connect_timeout=self.options.timeout,
                  retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), 2),
                  username=t.username, password=t.password, ssl=t.tls, health_check_interval=15)
        if not t.cluster:
            kw["db"] = t.db
        return kw

    def _clients(self) -> tuple[Any, Any]:
        """The writer's client (its socket timeout leaves room for WAIT) and the readers'."""
        t, o = self.target, self.options
        write = self._client_kwargs(o.timeout + (o.replica_timeout if o.replicas else 0.0))
        read = self._client_kwargs(o.timeout)
        if t.cluster:
            return (redis.RedisCluster(startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in t.nodes], **write),
                    aredis.RedisCluster(startup_nodes=[aredis.cluster.ClusterNode(h, p) for h, p in t.nodes], **read))
        (host, port), = t.nodes
        return redis.Redis(host=host, port=port, **write), aredis.Redis(host=host, port=port, **read)

    async def open(self) -> None:
        if self._writer is not None:
            return
        try:
            self._sync, self._async = await asyncio.to_thread(self._clients)
            await self._async.ping()
        except RedisError as exc:
            await self.close()
            raise StoreUnavailable(f"cannot reach the Redis store {self.target!r}: {exc}") from None
        self._commit_script = self._sync.register_script(COMMIT)
        self._writer = ThreadPoolExecutor(self.options.writers, thread_name_prefix="idnode-redis-writer")

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def _reader(self) -> Any:
        if self._async is None:
            raise StoreUnavailable("the store is not open")
        return self._async

    def corrupt(self, key: str) -> CorruptRecord:
        log.error("corrupt record in the Redis store for %s: it holds something this node did not write", key)
        return CorruptRecord(f"the stored record of {key} is corrupt")

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the Redis store {self.target!r} is unavailable ({type(exc).__name__}: {exc})")

    def failure_counts(self) -> RedisFailures:
        return self._failures

    # -- writes -----------------------------------------------------------------------
    def batch_groups(self, keys: Sequence[str]) -> list[list[int]]:
        if not self.cluster:
            return [list(range(len(keys)))]
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(K.shard(k), []).append(i)
        return list(groups.values())

    async def transact(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._writer is None:
            raise StoreUnavailable("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._transaction, fn, args)

    def _transaction(self, fn: Callable[..., Any], args: tuple) -> Any:
        deadline = time.monotonic() + self.options.deadline
        now = time.time()
        pause = 0.005
        while True:
            tx = RedisTx(self._sync, now, self.corrupt)
            try:
                result = fn(tx, *args)
                if self._commit(tx):
                    return result
                why: BaseException | None = None
            except ResponseError as exc:
                text = str(exc)
                if "WRONGTYPE" in text:
                    raise self.corrupt(text[text.index("WRONGTYPE") + 10:].split(" ")[0] or "a record") from None
                if not transient(exc):
                    raise StoreUnavailable(f"the Redis store refused the write: {exc}") from None
                why = exc
                self._refresh()
            except Exception as exc:      # noqa: BLE001 - a fault of redis-py's own, mid-failover, too
                if not client_fault(exc):
                    raise
                why = exc
                self._refresh()
            if time.monotonic() + pause > deadline:
                if why is None:
                    raise StoreUnavailable("the record kept changing under concurrent writes; try again")
                raise self._unavailable(why)
            time.sleep(pause * (0.5 + secrets.randbelow(1000) / 1000))
            pause = min(pause * 2, 0.25)

    def _refresh(self) -> None:
        if self.cluster:
            try:
                self._sync.nodes_manager.initialize()
            except RedisError:
                pass

    def _commit(self, tx: RedisTx) -> bool:
        """One script per slot on a cluster (node-wide keys last), one in all on a single Redis."""
        ops = tx.ops
        if not ops and not tx.counts and not tx.audit:
            return True
        tags = sorted({K.tag_of(k) for _, k, _ in ops} or {K.GLOBAL}, key=lambda t: (t == K.GLOBAL, t))
        ops = ops + [("INCRBY", K.counter(tags[0], name), [delta]) for name, delta in tx.counts.items()]
        stream = K.audit(tags[-1])           # the write's audit entries, in its order, with its last slot
        ops += [("XADD", stream, ["*", b"a", repr(e.at), b"u", e.actor, b"o", e.operation, b"h", e.handle,
                                  b"b", e.before_digest, b"f", e.after_digest]) for e in tx.audit]
        token = secrets.token_hex(8)
        if not self.cluster:
            return self._commit_group(token, list(tx.checks.items()), ops)
        for tag in tags:
            if not self._commit_group(token, [(k, v) for k, v in tx.checks.items() if K.tag_of(k) == tag],
                                      [op for op in ops if K.tag_of(op[1]) == tag]):
                return False
        return True

    def _commit_group(self, token: str, checks: list[tuple[str, bytes]], ops: list[tuple[str, str, list]]) -> bool:
        index: dict[str, int] = {}
        keys: list[str] = []

        def at(key: str) -> int:
            i = index.get(key)
            if i is None:
                keys.append(key)
                i = index[key] = len(keys)
            return i

        argv: list[Any] = [token, len(checks)]
        for k, v in checks:
            argv += [at(k), v]
        for op, k, params in ops:
            argv += [op, at(k), TYPES[op], len(params), *params]
        node = self._sync.get_node_from_key(keys[0]) if self.cluster else None
        name = node.name if node is not None else ""
        if self._resting.get(name, 0.0) > time.monotonic():
            raise StoreUnavailable(f"the Redis master {name or self.target!r} failed a write moments ago (down, "
                                   "failing over, or short of replicas); try again shortly")
        client = self._sync.get_redis_connection(node) if node is not None else self._sync
        pipe = client.pipeline(transaction=False)
        self._commit_script(keys=keys, args=argv, client=pipe)
        if self.options.replicas:
            pipe.execute_command("WAIT", self.options.replicas, int(self.options.replica_timeout * 1000))
        try:
            replies = pipe.execute()
        except Exception as exc:          # noqa: BLE001
            if client_fault(exc) and not moving(exc):     # a redirection is no sign of a master in trouble
                self._rest(name)
            raise
        if replies[0] not in (1, 2):
            return False                   # a record read has changed: run again
        if self.options.replicas and replies[1] < self.options.replicas:
            self._rest(name)
            raise StoreUnavailable(f"the write reached the master but {replies[1]} of {self.options.replicas} "
                                   f"replicas confirmed it within {self.options.replica_timeout:g} s; it may "
                                   "or may not be kept")
        self._resting.pop(name, None)
        return True

    def _rest(self, name: str) -> None:
        """A master that just failed a write takes none for ``REST_SECONDS``:
        the writes of its slots fail at once meanwhile instead of each waiting
        out a timeout (a circuit breaker per master; a failover names a new one)."""
        if len(self._resting) > 1024:
            self._resting.clear()
        self._resting[name] = time.monotonic() + REST_SECONDS

    # -- reads --------------------------------------------------------------------------
    def _row(self, key: str, h, b, p, r, c) -> ReadRow | None:
        if h is None and b is None:
            return None
        if h is None or b is None or p is None or c != crc(h, b, r):
            raise self.corrupt(key)
        return ReadRow(h.decode(), b, None, r)

    async def read(self, key: str) -> ReadRow | None:
        """One record. Reads asked for in the same turn of the event loop go
        to Redis together, in one pipeline of at most ``READ_BATCH`` (the
        misses of one burst of datagrams or connections): redis-py's cost per
        round trip is paid once per batch instead of once per read. At most
        ``max_reads_waiting`` reads wait at once (a Redis slower than the
        requests coming in): past that a read fails at once (StoreUnavailable,
        RC 3; the cache stage still answers from stale entries) instead of
        queueing without end."""
        if self.reads_waiting >= self.options.max_reads_waiting:
            raise StoreUnavailable(f"{self.reads_waiting} reads are already waiting on the Redis store "
                                   f"{self.target!r} (store.max_reads_waiting); try again shortly")
        future = asyncio.get_running_loop().create_future()
        self.reads_waiting += 1
        self._pending.append((key, future))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._send_pending)
        return await future

    def _send_pending(self) -> None:
        pending, self._pending = self._pending, []
        for at in range(0, len(pending), READ_BATCH):
            task = asyncio.ensure_future(self._read_batch(pending[at:at + READ_BATCH]))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _read_batch(self, batch: list[tuple[str, asyncio.Future]]) -> None:
        try:
            found = await self._fetch({k for k, _ in batch})
        except BaseException as exc:  # noqa: BLE001 - every reader of the batch gets it
            found = {k: exc for k, _ in batch}
        finally:
            self.reads_waiting -= len(batch)
        for key, future in batch:
            if not future.done():
                result = found.get(key)
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def read_many(self, keys: Collection[str]) -> dict[str, ReadRow]:
        found = await self._fetch(keys)
        for result in found.values():
            if isinstance(result, BaseException):
                raise result
        return {k: r for k, r in found.items() if r is not None}

    async def _fetch(self, keys: Collection[str]) -> dict[str, ReadRow | None | BaseException]:
        """Each key's record, None, or its error (a corrupt record is that
        key's alone); StoreUnavailable for all when Redis cannot be reached."""
        keys = list(keys)
        guessed = list({k.partition("/")[0] for k in keys})
        try:
            pipe = self._reader().pipeline(transaction=False)
            for k in keys:
                pipe.hmget(K.row(k), "h", "b", "p", "r", "c")
            for p in guessed:
                pipe.hget(K.prefix(p), "state")
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:          # noqa: BLE001
            if not client_fault(exc):
                raise
            raise self._unavailable(exc) from None
        for reply in replies:
            if isinstance(reply, BaseException) and "WRONGTYPE" not in str(reply):
                raise self._unavailable(reply)
        states = dict(zip(guessed, replies[len(keys):]))
        out: dict[str, ReadRow | None | BaseException] = {}
        for k, reply in zip(keys, replies):
            try:
                if isinstance(reply, BaseException):
                    raise self.corrupt(k)
                row = self._row(k, *reply)
                if row is not None:
                    prefix_key = reply[2].decode()
                    state = states[prefix_key] if prefix_key in states else \
                        await self._call(self._reader().hget(K.prefix(prefix_key), "state"))
                    if isinstance(state, BaseException):
                        raise self.corrupt(prefix_key)
                    row = ReadRow(row.handle, row.blob, state.decode() if state else None, row.ready)
                out[k] = row
            except CorruptRecord as exc:
                out[k] = exc
        return out

    async def _call(self, awaitable):
        try:
            return await awaitable
        except ResponseError as exc:
            if str(exc).startswith("WRONGTYPE"):
                return exc
            raise self._unavailable(exc) from None
        except Exception as exc:          # noqa: BLE001
            if not client_fault(exc):
                raise
            raise self._unavailable(exc) from None

    async def read_home(self, prefix_key: str) -> tuple[str | None, ReadRow | None]:
        record = "0.na/" + prefix_key
        pipe = self._reader().pipeline(transaction=False)
        pipe.hget(K.prefix(prefix_key), "state")
        pipe.hmget(K.row(record), "h", "b", "p", "r", "c")
        replies = await self._call(pipe.execute())
        if isinstance(replies, BaseException):
            raise self.corrupt(record)
        state, row = replies
        return (state.decode() if state is not None else None), self._row(record, *row)

    async def read_prefix(self, key: str) -> PrefixInfo | None:
        values = await self._call(self._reader().hmget(K.prefix(key), *PREFIX_FIELDS))
        if isinstance(values, BaseException):
            raise self.corrupt(key)
        return prefix_of(values)

    async def list_prefixes(self) -> list[PrefixInfo]:
        keys = await self._call(self._reader().zrange(K.PREFIXES, 0, -1))
        if not keys:
            return []
        pipe = self._reader().pipeline(transaction=False)
        for k in keys:
            pipe.hmget(K.prefix(k.decode()), *PREFIX_FIELDS)
        found = await self._call(pipe.execute())
        return [p for p in map(prefix_of, found) if p is not None]

    async def read_admin(self, handle_key: str, index: int) -> AdminIdentity | None:
        data = await self._call(self._reader().hget(K.admins(handle_key), str(index)))
        if data is None:
            return None
        try:
            return admin_of(data)
        except (ValueError, TypeError, cbor2.CBORDecodeError):
            raise self.corrupt(handle_key) from None

    async def list_keys(self, prefix_key: str, after: str | None, limit: int) -> list[tuple[str, str]]:
        """A k-way merge of the shards' listings, each read ``_LIST_CHUNK`` at a time."""
        if limit <= 0:
            return []
        tags = [K.GLOBAL] if f"{prefix_key}/".startswith(K.NODE_SUFFIX) else [t for t in K.ALL_TAGS if t != K.GLOBAL]
        start = f"[{after}\x01" if after is not None else f"[{prefix_key}/"
        stop = f"({prefix_key}0"
        low = {t: start for t in tags}
        heap: list[tuple[bytes, str]] = []
        waiting = list(tags)
        out: list[tuple[str, str]] = []
        while len(out) < limit:
            if waiting:
                pipe = self._reader().pipeline(transaction=False)
                for t in waiting:
                    pipe.zrange(K.listing(t, prefix_key), low[t], stop, bylex=True, offset=0, num=_LIST_CHUNK)
                replies = await self._call(pipe.execute())
                for t, members in zip(waiting, replies):
                    if members:
                        for m in members:
                            heapq.heappush(heap, (m, t if m is members[-1] and len(members) == _LIST_CHUNK
                                                  else ""))
                        low[t] = "(" + members[-1].decode()
                waiting = []
            if not heap:
                break
            member, refill = heapq.heappop(heap)
            key, _, handle = member.decode().partition("\x00")
            out.append((key, handle))
            if refill:                       # the last of its shard's chunk: read that shard's next one
                waiting.append(refill)
        return out

    async def read_meta(self, name: str) -> Any:
        value = await self._call(self._reader().hget(K.meta(name), "value"))
        if value is not None:
            return cbor2.loads(value)
        pipe = self._reader().pipeline(transaction=False)
        for t in K.ALL_TAGS:
            pipe.get(K.counter(t, name))
        counts = [int(c) for c in await self._call(pipe.execute()) if c is not None]
        return sum(counts) if counts else None

    async def count_prefixes(self) -> int:
        return await self._call(self._reader().zcard(K.PREFIXES))

    # -- the audit log and the change feed ------------------------------------------------
    async def _streams(self, starts: dict[str, str], count: int | None) -> dict[str, list[tuple[bytes, AuditEntry]]]:
        pipe = self._reader().pipeline(transaction=False)
        for tag, start in starts.items():
            pipe.xrange(K.audit(tag), start, "+", count=count)
        replies = await self._call(pipe.execute())
        return {tag: [(i, _entry(i, tag, f)) for i, f in reply] for tag, reply in zip(starts, replies)}

    @staticmethod
    def _merged(found: dict[str, list[tuple[bytes, AuditEntry]]]) -> list[AuditEntry]:
        return sorted((e for entries in found.values() for _, e in entries), key=lambda e: e.seq)

    async def audit(self, since_seq: int, limit: int) -> list[AuditEntry]:
        found = await self._streams({t: K.range_start(since_seq, t) for t in K.ALL_TAGS}, limit or None)
        merged = self._merged(found)
        return merged[:limit] if limit else merged

    async def _last_ids(self) -> dict[str, str]:
        pipe = self._reader().pipeline(transaction=False)
        for t in K.ALL_TAGS:
            pipe.xrevrange(K.audit(t), "+", "-", count=1)
        replies = await self._call(pipe.execute())
        return {t: (r[0][0].decode() if r else "0-0") for t, r in zip(K.ALL_TAGS, replies)}

    async def last_seq(self) -> int:
        return max((K.seq_of(i, t) for t, i in (await self._last_ids()).items() if i != "0-0"), default=0)

    async def feed(self, poll_interval: float) -> AsyncIterator[list[AuditEntry] | None]:
        """The audit streams from a cursor per stream. While Redis cannot be
        reached the cursors stay where they are and the feed tries again each
        poll, so an outage loses no change (and a reader's cache need not be
        dropped: it keeps answering, stale within its bound, meanwhile)."""
        cursors = await self._last_ids()
        away = False
        while True:
            await asyncio.sleep(poll_interval)
            try:
                found = await self._streams({t: f"({i}" for t, i in cursors.items()}, FEED_BATCH)
            except StoreUnavailable as exc:
                if not away:
                    log.warning("cannot read the change feed; trying again each poll", extra={"error": str(exc)})
                away = True
                continue
            if away:
                log.warning("the change feed is back")
                away = False
            if any(len(entries) >= FEED_BATCH for entries in found.values()):
                cursors = await self._last_ids()           # far behind: start over from here
                yield None
                continue
            for tag, entries in found.items():
                if entries:
                    cursors[tag] = entries[-1][0].decode()
            merged = self._merged(found)
            if merged:
                yield merged
