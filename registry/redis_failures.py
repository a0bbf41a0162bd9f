"""Failed-login counts kept in Redis, so every node instance sharing the
registry counts a source's failures together (the lock-out policy itself is
:mod:`resolver.core.lockout`; this is its storage).

The table is bounded like the node's shared memory: a source's count lives in
one of ``64 x FAIL_BUCKETS`` bucket hashes (:func:`registry.redis_keys.failure_bucket`),
each holding at most ``FAIL_WAYS`` sources as ``"count:first"``; a newcomer
to a full bucket takes the place of an entry whose window ended, else of the
one whose window started first. A bucket expires one window after its last
failure. One script reads or counts, so two instances counting the same
source at once never lose a failure.
"""

from __future__ import annotations

from typing import Any, Callable

from . import redis_keys as K
from .errors import StoreUnavailable
from .redis_faults import client_fault

COUNT = """
local now, window, add = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local held = redis.call('HGET', KEYS[1], ARGV[1])
local count, first = 0, now
if held then
  local c, f = string.match(held, '^(%d+):(%d+)$')
  if c then count, first = tonumber(c), tonumber(f) end
  if now - first > window then count, first = 0, now end
end
if not add then return count end
if not held and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
  local all = redis.call('HGETALL', KEYS[1])
  local victim, oldest = nil, nil
  for i = 1, #all, 2 do
    local f = tonumber(string.match(all[i + 1], ':(%d+)$') or '0')
    if now - f > window then victim = all[i] break end
    if oldest == nil or f < oldest then victim, oldest = all[i], f end
  end
  redis.call('HDEL', KEYS[1], victim)
end
redis.call('HSET', KEYS[1], ARGV[1], (count + 1) .. ':' .. first)
redis.call('EXPIRE', KEYS[1], window + 1)
return count + 1
"""


class RedisFailures:
    """``failures``/``add_failure`` of :class:`resolver.shared.SharedState`,
    async, over the backend's Redis client (StoreUnavailable when away)."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client
        self._script: Any = None

    async def _run(self, source: str, now: int, window: int, add: bool) -> int:
        try:
            client = self._client()
            if self._script is None:
                self._script = client.register_script(COUNT)
            return int(await self._script(keys=[K.failure_bucket(source)],
                                          args=[source, now, window, 1 if add else 0, K.FAIL_WAYS]))
        except Exception as exc:          # noqa: BLE001 - a fault of redis-py's own, mid-failover, too
            if not client_fault(exc):
                raise
            raise StoreUnavailable(f"cannot reach the Redis store for failure counts ({type(exc).__name__}: {exc})") \
                from None

    async def failures(self, source: str, now: int, window: int) -> int:
        """Failures of ``source`` in the window still open at ``now``."""
        return await self._run(source, now, window, False)

    async def add_failure(self, source: str, now: int, window: int) -> int:
        """Count one failure; its count in the current window."""
        return await self._run(source, now, window, True)
