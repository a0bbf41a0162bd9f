"""The ceilings: the least a server on the same core can do per request.

Each is a separate process (``python -m bench.ceilings KIND ...``) pinned
like the node, loaded by the same generator, answering with a fixed reply of
the size the node's replies had:

* ``udp``  a bare uvloop datagram responder: copies the request id into a
  fixed Handle reply (split into the same number of packets) and sends it;
* ``tcp``  a bare uvloop stream responder: frames requests by the envelope's
  length, answers each with the fixed reply and the request id;

  with ``--records small`` or ``mixed`` (``idnode bench --records``) both
  instead cycle through the real replies of the first 100 records of that
  kind, so the shapes and datagram counts match the node's;
* ``http`` a bare aiohttp app whose every route returns a constant body;
* ``sqlite`` (not a server) inserts N rows of the import's size into SQLite
  in the node's durability settings, batch by batch: the import's ceiling.

A server prints ``ready PORT`` on stdout once bound, which is how the
harness knows it is up. ``redis-benchmark`` against a redis-server started
on a free port is run from :mod:`bench.external`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import time

from . import wire


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, packets: list[bytes], cycle: list[list[bytes]] | None = None) -> None:
        self.packets = [bytearray(p) for p in packets]
        self.cycle = [[bytearray(p) for p in ps] for ps in cycle] if cycle else None
        self.turn = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        rid = data[8:12]
        sendto = self.transport.sendto      # type: ignore[union-attr]
        packets = self.packets
        if self.cycle:
            self.turn = (self.turn + 1) % len(self.cycle)
            packets = self.cycle[self.turn]
        for p in packets:
            p[8:12] = rid
            sendto(p, addr)


class _Stream(asyncio.Protocol):
    def __init__(self, reply: bytes, cycle: list[bytes] | None = None) -> None:
        self.reply = bytearray(reply)
        self.cycle = [bytearray(r) for r in cycle] if cycle else None
        self.turn = 0
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 20:
            total = 20 + int.from_bytes(buf[16:20], "big")
            if len(buf) < total:
                return
            reply = self.reply
            if self.cycle:
                self.turn = (self.turn + 1) % len(self.cycle)
                reply = self.cycle[self.turn]
            reply[8:12] = buf[8:12]
            self.transport.write(bytes(reply))     # type: ignore[union-attr]
            del buf[:total]


def _record_replies(found: bool, records: str) -> list[bytes] | None:
    """The replies a found-handle ceiling cycles through for small or mixed records; None: one fixed reply."""
    return wire.hs_record_replies(records) if found and records != "large" else None


async def _serve_udp(size: int, found: bool, records: str = "large") -> None:
    loop = asyncio.get_running_loop()
    packets = wire.hs_datagrams(wire.hs_reply(size, found=found))
    cycle = _record_replies(found, records)
    cycle_packets = [wire.hs_datagrams(r) for r in cycle] if cycle else None
    transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(packets, cycle_packets),
                                                       local_addr=("127.0.0.1", 0))
    _ready(transport.get_extra_info("sockname")[1])
    await asyncio.Event().wait()


async def _serve_tcp(size: int, found: bool, records: str = "large") -> None:
    loop = asyncio.get_running_loop()
    reply = wire.hs_reply(size, found=found)
    cycle = _record_replies(found, records)
    server = await loop.create_server(lambda: _Stream(reply, cycle), "127.0.0.1", 0, backlog=1024)
    _ready(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


async def _serve_http(size: int, status: int, content_type: str) -> None:
    from aiohttp import web

    body = b"x" * size

    async def answer(request: web.Request) -> web.Response:
        if request.can_read_body:
            await request.read()
        return web.Response(body=body, status=status, content_type=content_type)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    _ready(site._server.sockets[0].getsockname()[1])     # type: ignore[union-attr]
    await asyncio.Event().wait()


def _ready(port: int) -> None:
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()


def sqlite_ceiling(path: str, rows: int, row_bytes: int, batch: int) -> float:
    """Insert ``rows`` rows of ``row_bytes`` into a keyed table, ``batch`` per
    transaction, WAL and synchronous=FULL as the embedded store does; rows/s."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE handles (key TEXT PRIMARY KEY, handle TEXT NOT NULL, prefix TEXT NOT NULL, "
                 "vals BLOB NOT NULL, updated REAL NOT NULL) WITHOUT ROWID")
    blob = b"v" * row_bytes
    t0 = time.perf_counter()
    for at in range(0, rows, batch):
        items = [(f"88.118.8/ceiling-{i:09d}", f"88.118.8/CEILING-{i:09d}", "88.118.8", blob, t0)
                 for i in range(at, min(rows, at + batch))]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO handles VALUES (?, ?, ?, ?, ?)", items)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return rows / elapsed if elapsed else 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceilings", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["udp", "tcp", "http", "sqlite"])
    parser.add_argument("--size", type=int, required=True, help="reply bytes (sqlite: bytes per row)")
    parser.add_argument("--not-found", action="store_true", help="answer HS RC 100 instead of a value list")
    parser.add_argument("--records", choices=["small", "mixed", "large"], default="large",
                        help="HS found replies: records of this kind (large: one fixed reply of --size)")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--path", default="")
    args = parser.parse_args(argv)
    if args.kind == "sqlite":
        print(f"rows_per_second {sqlite_ceiling(args.path, args.rows, args.size, args.batch):.1f}", flush=True)
        return
    import uvloop
    server = {"udp": lambda: _serve_udp(args.size, not args.not_found, args.records),
              "tcp": lambda: _serve_tcp(args.size, not args.not_found, args.records),
              "http": lambda: _serve_http(args.size, args.status, args.content_type)}[args.kind]
    try:
        uvloop.run(server())
    except KeyboardInterrupt:
        os._exit(0)


if __name__ == "__main__":
    main()
