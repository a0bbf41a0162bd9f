"""How the Redis backend reads redis-py's errors: which are worth trying
again, which mean a slot is moving, and which are the client's own faults."""

from __future__ import annotations

from redis.exceptions import AskError, ClusterError, ReadOnlyError, RedisError, ResponseError, TryAgainError

_TRANSIENT = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS")

_MOVING = ("MOVED", "ASK", "TRYAGAIN")          # a slot on its way to another master: this one is fine


def moving(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, (AskError, TryAgainError)) or (
        isinstance(exc, ResponseError) and (text.startswith(_MOVING) or any(f"error: {t}" in text for t in _MOVING)))


def transient(exc: BaseException) -> bool:
    """Worth trying again: Redis away, a failover, a slot moving. (redis-py
    names some answers by class only: TRYAGAIN arrives as TryAgainError
    whose text is Redis's explanation, not the code.)"""
    if isinstance(exc, (AskError, TryAgainError, ClusterError, ReadOnlyError)):
        return True
    if isinstance(exc, ResponseError):
        text = str(exc)
        return text.startswith(_TRANSIENT) or any(f"error: {t}" in text for t in _TRANSIENT)   # or in a pipeline
    return isinstance(exc, RedisError)


def client_fault(exc: BaseException) -> bool:
    """A RedisError, or an error raised inside redis-py's own code where it
    should have raised one: its cluster client, in the middle of a failover,
    has been seen to fail with AttributeError on a connection it had just
    dropped. Either way the store is away for now (RC 3), not the node broken."""
    if isinstance(exc, RedisError):
        return True
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and str(last.tb_frame.f_globals.get("__name__", "")).startswith("redis.")
