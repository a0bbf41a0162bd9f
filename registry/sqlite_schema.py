"""Schema of the embedded store, its migrations, and how SQLite errors map to ours.

``PRAGMA user_version`` holds the schema version; :func:`migrate` applies
the steps in ``MIGRATIONS`` one transaction each, so two processes opening
a new file at once cannot both run a step.
"""

from __future__ import annotations

import sqlite3

from .errors import RegistryError, StoreUnavailable

SCHEMA_VERSION = 2

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
    CREATE TABLE prefixes (
        key TEXT PRIMARY KEY, prefix TEXT NOT NULL, owner TEXT NOT NULL,
        credit_code TEXT NOT NULL, contact TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('enabled', 'disabled')),
        created INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE handles (
        key TEXT PRIMARY KEY, handle TEXT NOT NULL, prefix_key TEXT NOT NULL,
        vals BLOB NOT NULL, updated REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE admins (
        handle_key TEXT NOT NULL REFERENCES handles(key) ON DELETE CASCADE,
        idx INTEGER NOT NULL, handle TEXT NOT NULL,
        scope_key TEXT REFERENCES prefixes(key), scope TEXT,
        password_hash TEXT NOT NULL,
        PRIMARY KEY (handle_key, idx)) WITHOUT ROWID;
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL,
        operation TEXT NOT NULL, handle TEXT NOT NULL,
        before_digest TEXT NOT NULL, after_digest TEXT NOT NULL);
    INSERT INTO meta (name, value) VALUES ('handle_count', 0);
    """,
    # Each identifier's public values ready for a reply (registry.codec.ready_values).
    # Rows written before stay NULL until their next write, and are answered
    # from their stored values meanwhile.
    2: """
    ALTER TABLE handles ADD COLUMN ready BLOB;
    """,
}


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION, one transaction per step."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RegistryError(f"the store has schema version {version}; this idnode knows {SCHEMA_VERSION}")
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current == version:      # nobody migrated it meanwhile
                for statement in MIGRATIONS[version + 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def db_error(exc: sqlite3.Error) -> RegistryError:
    """Busy or locked past the timeout, I/O and disk trouble: retryable; the rest: final."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (5, 6):                       # SQLITE_BUSY, SQLITE_LOCKED
        return StoreUnavailable("the store is busy (database is locked); try again")
    if primary in (7, 8, 10, 13, 14, 15):       # NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
        return StoreUnavailable(f"the store is unavailable: {exc}")
    return RegistryError(f"store error: {exc}")
