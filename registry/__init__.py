"""The source of truth: one Store (the rules, :mod:`registry.rules`) over one
storage backend per kind of store, picked by URL here and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import NotInitialised, StoreUnavailable
from .redis_keys import RedisOptions
from .rules import Registry
from .secrets import NodeKey
from .store import Store
from .validation import SizeLimits

SQLITE = "sqlite://"
REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+cluster", "rediss+cluster"})
DEFAULT_DB = "registry.sqlite3"
NODE_KEY_FILE = "node.key"


def default_url(home: Path) -> str:
    """The embedded store of a node home."""
    return SQLITE + str(Path(home) / DEFAULT_DB)


def _make_home(home: Path) -> None:
    """Create the home directory (mode 0700: it holds the node key)."""
    if home.is_dir():
        return
    try:
        home.mkdir(mode=0o700, parents=True)
        os.chmod(home, 0o700)        # whatever the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreUnavailable(f"cannot create home directory {home}: {exc.strerror}") from None


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite://PATH`` URL (``sqlite:///abs/path`` or ``sqlite://rel/path``)."""
    if not url.startswith(SQLITE) or len(url) == len(SQLITE):
        raise StoreUnavailable(f"not a SQLite store URL: {url!r} (expected sqlite:///path/to/file)")
    return Path(url[len(SQLITE):])


def open_store(url: str | None, *, home: str | os.PathLike, create: bool = True,
               limits: SizeLimits = SizeLimits(), redis: RedisOptions | None = None) -> Store:
    """The store at ``url`` (None or "": the embedded store in ``home``); the
    caller awaits ``open()`` and ``close()``. The node key is ``<home>/node.key``
    whatever the URL (it never goes into a shared store); every write obeys
    ``limits``.

    ``sqlite:///path`` is the embedded store; ``redis://host:port/db``,
    ``rediss://`` (TLS) and ``redis+cluster://host:port,host:port`` are a
    Redis or a Redis Cluster, written as ``redis`` says (default: wait for no
    replica on a single Redis, for one on a cluster).

    With ``create=False`` a store that does not exist yet is refused
    (NotInitialised) instead of being set up, so a mistyped ``--home`` does
    not leave an empty node behind.
    """
    home = Path(home)
    url = url or default_url(home)
    scheme = url.partition("://")[0]
    key_path = home / NODE_KEY_FILE
    if scheme in REDIS_SCHEMES:
        from .redis_backend import RedisBackend      # imported when chosen: it brings redis-py

        options = redis or RedisOptions(replicas=1 if scheme.endswith("+cluster") else 0)
        backend = RedisBackend(url, options)
        if not create:
            if not key_path.exists():
                raise NotInitialised(f"no node in {home} (no {key_path}); run `idnode init` first, or copy the "
                                     "node key of the instances that share this store")
            return Registry(backend, NodeKey.load(key_path), limits)
        _make_home(home)
        return Registry(backend, NodeKey.load_or_create(home), limits)
    if scheme != "sqlite":
        raise StoreUnavailable(f"unknown store URL scheme {scheme!r} in {url!r}; this node knows sqlite://, "
                               "redis://, rediss:// and redis+cluster://")
    from .sqlite import SQLiteBackend

    path = sqlite_path(url)
    if not create:
        if not path.exists():
            raise NotInitialised(f"no node in {home} (no {path}); run `idnode init` first")
        return Registry(SQLiteBackend(path), NodeKey.load(key_path), limits)
    _make_home(home)
    return Registry(SQLiteBackend(path), NodeKey.load_or_create(home), limits)


__all__ = ["open_store", "default_url", "Store", "Registry", "SizeLimits"]
