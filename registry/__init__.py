"""The source of truth: one Store interface, one module per backend."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import NotInitialised, StoreUnavailable
from .secrets import NodeKey

if TYPE_CHECKING:
    from resolver.settings import Settings

    from .store import Store


def _make_home(settings: "Settings") -> None:
    """Create the home directory (mode 0700: it holds the node key)."""
    home = settings.home
    if home.is_dir():
        return
    try:
        home.mkdir(mode=0o700, parents=True)
        os.chmod(home, 0o700)        # whatever the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreUnavailable(f"cannot create home directory {home}: {exc.strerror}") from None


def open_store(settings: "Settings", *, create: bool = True) -> "Store":
    """The store the settings name; the caller awaits ``open()`` and ``close()``.

    This is the only place that picks a backend. With ``create=False`` a home
    without a store is refused (NotInitialised) instead of being set up, so a
    mistyped ``--home`` does not leave an empty node behind.
    """
    backend = settings.store.backend
    if backend != "sqlite":
        raise StoreUnavailable(f"unknown store backend {backend!r}")
    from .sqlite import SQLiteStore      # imported when chosen: later backends bring their own clients

    path = settings.store_path
    if not create:
        if not path.exists():
            raise NotInitialised(f"no node in {settings.home} (no {path.name}); run `idnode init` first")
        return SQLiteStore(path, NodeKey.load(settings.node_key_path))
    _make_home(settings)
    return SQLiteStore(path, NodeKey.load_or_create(settings.home))
