"""Crash safety: a writer process is SIGKILLed mid-run; every acknowledged write survives."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from registry.rules import Registry
from registry.secrets import NodeKey
from registry.sqlite import SQLiteBackend

from .conftest import add_prefix

BATCH = 300

# The child: numbered batches (one transaction each, values include a secret),
# each followed by a single-handle write of the batch number; it prints the
# number only after both were acknowledged, then goes on until it is killed.
WRITER = r'''
import asyncio, base64, os, sys
from protocol.values import HandleValue
from registry.rules import Registry
from registry.secrets import NodeKey
from registry.sqlite import SQLiteBackend

async def main(path, tag, size):
    store = Registry(SQLiteBackend(path), NodeKey(base64.b64decode(os.environ["IDNODE_TEST_NODE_KEY"])))
    await store.open()
    n = 0
    while True:
        items = [(f"88.118.8/{tag}-{n}-{i}", [HandleValue(1, "URL", b"https://example.com/%d" % i),
                                               HandleValue(300, "HS_SECKEY", b"secret-%d-%d" % (n, i))])
                 for i in range(size)]
        results = await store.register_batch(items, overwrite=False, actor="crash")
        assert all(r.code == 1 for r in results), results
        await store.put_handle(f"88.118.8/{tag}-last", [HandleValue(1, "DESC", str(n).encode())],
                               mode="replace", actor="crash")
        print(n, flush=True)
        n += 1

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
'''


async def run_and_kill(script: Path, db_path: Path, key: bytes, tag: str, kill_after: int) -> list[int]:
    env = dict(os.environ, IDNODE_TEST_NODE_KEY=base64.b64encode(key).decode())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(db_path), tag, str(BATCH), env=env,
        cwd=Path(__file__).resolve().parents[2], stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    acked: list[int] = []
    try:
        while len(acked) < kill_after:
            line = await proc.stdout.readline()
            if not line:
                break
            acked.append(int(line))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        stderr = await proc.stderr.read()
        await proc.wait()
    assert len(acked) == kill_after, stderr.decode()
    assert proc.returncode == -signal.SIGKILL
    return acked


def batches_on_disk(db_path: Path, tag: str) -> Counter:
    with sqlite3.connect(db_path) as conn:
        keys = [k for (k,) in conn.execute("SELECT key FROM handles WHERE key >= ? AND key < ?",
                                           (f"88.118.8/{tag}-", f"88.118.8/{tag}."))]
    return Counter(int(k.split("-")[1]) for k in keys if not k.endswith("-last"))


async def test_sigkill_loses_no_acknowledged_batch(tmp_path, hashes):
    raw_key = os.urandom(32)
    path = tmp_path / "crash.sqlite3"
    first = Registry(SQLiteBackend(path), NodeKey(raw_key))
    await first.open()
    await add_prefix(first, "88.118.8", hashes)
    await first.close()

    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    for round_, kill_after in enumerate((3, 7, 12)):
        tag = f"r{round_}"
        acked = await run_and_kill(script, path, raw_key, tag, kill_after)

        with sqlite3.connect(path) as conn:     # opening runs WAL recovery
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        on_disk = batches_on_disk(path, tag)
        assert all(n in on_disk for n in acked), (acked, sorted(on_disk))
        assert all(count == BATCH for count in on_disk.values())        # no batch half-written
        assert set(on_disk) <= set(acked) | {max(acked) + 1}           # at most the one in flight

        reopened = Registry(SQLiteBackend(path), NodeKey(raw_key))
        await reopened.open()
        try:
            last = int((await reopened.get_handle(f"88.118.8/{tag}-last")).values[0].data)
            assert last >= max(acked)
            n = max(acked)
            assert await reopened.admin_secret(f"88.118.8/{tag}-{n}-7", 300) == b"secret-%d-7" % n
            with sqlite3.connect(path) as conn:
                rows = conn.execute("SELECT count(*) FROM handles").fetchone()[0]
                audited = conn.execute("SELECT count(*) FROM audit WHERE actor = 'crash' AND handle LIKE ?",
                                       (f"88.118.8/{tag}-%",)).fetchone()[0]
            assert await reopened.count_handles() == rows
            # one audit row per handle written, one per counter write
            assert audited == sum(on_disk.values()) + (last + 1)
        finally:
            await reopened.close()
