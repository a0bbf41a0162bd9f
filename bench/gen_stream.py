"""HS protocol over TCP and REST over HTTP/1.1: the load loops over many connections.

One request in flight per connection (what Handle.Net clients and wrk do),
epoll over all of them in one process. Replies are framed, not decoded: the
HS envelope's message length (and the response code at a fixed offset), or
the HTTP status line and Content-Length. A server that closes a connection
after each reply is followed: the pending request goes out again on a new
connection, counted as a reconnect, not an error.
"""

from __future__ import annotations

import collections
import select
import socket
import struct
import time
from array import array
from typing import Callable

from .loadspec import LoadSpec, ProcResult

_U32 = struct.Struct(">I")
_HS_HEAD = 28            # envelope (20) + opCode + response code
Frame = tuple[int, int, int] | None          # (code, bytes to consume, payload bytes)


def hs_frame(buf: bytearray | bytes) -> Frame:
    if len(buf) < _HS_HEAD:
        return None
    total = 20 + _U32.unpack_from(buf, 16)[0]
    if len(buf) < total:
        return None
    return _U32.unpack_from(buf, 24)[0], total, total


def http_frame(buf: bytearray | bytes) -> Frame:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    at = buf.find(b"Content-Length:", 0, end)
    if at < 0:
        at = bytes(buf[:end]).lower().find(b"content-length:")
    length = int(buf[at + 15:buf.find(b"\r\n", at)]) if at >= 0 else 0
    total = end + 4 + length
    if len(buf) < total:
        return None
    return int(buf[9:12]), total, length


FRAMERS: dict[str, Callable[[bytearray | bytes], Frame]] = {"tcp": hs_frame, "http": http_frame}


class _Conn:
    __slots__ = ("sock", "fd", "buf", "t", "busy", "fresh", "req")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.fd = -1
        self.buf = bytearray()
        self.t = 0
        self.busy = False
        self.fresh = True
        self.req = b""


class _Loop:
    """The connections of one generator process and their bookkeeping."""

    def __init__(self, spec: LoadSpec, share: int, offset: int) -> None:
        self.spec = spec
        self.frame = FRAMERS[spec.protocol]
        self.ep = select.epoll()
        self.by_fd: dict[int, _Conn] = {}
        self.pool = spec.requests
        self.npool = len(self.pool)
        self.pos = offset % self.npool
        self.conn_errors = self.reconnects = 0
        self.conns = [self._attach(_Conn()) for _ in range(share)]
        self.conns = [c for c in self.conns if c.sock is not None]
        if not self.conns:
            raise ConnectionError(f"cannot connect to {spec.host}:{spec.port}")

    def _attach(self, c: _Conn) -> _Conn:
        try:
            s = socket.create_connection((self.spec.host, self.spec.port), timeout=self.spec.timeout)
        except OSError:
            self.conn_errors += 1
            c.sock = None
            return c
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.settimeout(self.spec.timeout)
        c.sock, c.fd, c.fresh = s, s.fileno(), True
        c.buf.clear()
        self.by_fd[c.fd] = c
        self.ep.register(c.fd, select.EPOLLIN)
        return c

    def _detach(self, c: _Conn) -> None:
        if c.sock is not None:
            self.by_fd.pop(c.fd, None)
            try:
                self.ep.unregister(c.fd)
            except OSError:
                pass
            c.sock.close()
            c.sock = None

    def send(self, c: _Conn, req: bytes | None = None) -> bool:
        if req is None:
            req = self.pool[self.pos]
            self.pos += 1
            if self.pos == self.npool:
                self.pos = 0
        c.req = req
        c.busy = True
        try:
            c.sock.sendall(req)        # type: ignore[union-attr]
            return True
        except OSError:
            return self.reopen(c, resend=True)

    def reopen(self, c: _Conn, *, resend: bool) -> bool:
        """Replace a closed connection; resend its request unless it had
        never answered anything (then that request failed)."""
        was_fresh = c.fresh
        self._detach(c)
        self._attach(c)
        if c.sock is None:
            c.busy = False
            return False
        if resend and c.busy and not was_fresh:
            self.reconnects += 1
            return self.send(c, c.req)
        if c.busy:
            self.conn_errors += 1
        c.busy = False
        return False

    def read(self, c: _Conn) -> list[tuple[int, int]]:
        """Complete replies on ``c`` as (code, payload bytes); [] if none yet.
        A closed connection is replaced (see :meth:`reopen`)."""
        try:
            data = c.sock.recv(262144)      # type: ignore[union-attr]
        except OSError:
            data = b""
        if not data:
            self.reopen(c, resend=True)
            return []
        buf = c.buf
        if not buf:                          # the usual case: exactly one whole reply, no copy
            fr = self.frame(data)            # type: ignore[arg-type]
            if fr is not None and fr[1] == len(data):
                return [(fr[0], fr[2])]
        buf += data
        out = []
        while True:
            fr = self.frame(buf)
            if fr is None:
                return out
            code, total, payload = fr
            del buf[:total]
            out.append((code, payload))

    def close(self) -> None:
        for c in self.conns:
            self._detach(c)
        self.ep.close()


def closed(spec: LoadSpec, share: int, offset: int, t0: int, cpu) -> ProcResult:
    """``share`` connections, each sending its next request when the last is answered."""
    now = time.monotonic_ns
    loop = _Loop(spec, share, offset)
    lat = array("q")
    t_meas = t0 + int(spec.warmup * 1e9)
    t_end = t_meas + int(spec.duration * 1e9)
    timeout_ns = int(spec.timeout * 1e9)
    expect, by_fd, poll, read, send = spec.expect, loop.by_fd, loop.ep.poll, loop.read, loop.send
    done = bad = timeouts = nbytes = 0
    errors_before = None
    cpu_start = None
    while now() < t0:
        time.sleep(0.0005)
    for c in loop.conns:
        c.t = now()
        send(c)
    next_scan = now() + 250_000_000
    while True:
        events = poll(0.05)
        t = now()
        if t >= t_meas and cpu_start is None:
            cpu_start, errors_before = cpu(), loop.conn_errors
        if t >= t_end:
            break
        for fd, _ in events:
            c = by_fd.get(fd)
            if c is None:
                continue
            replies = read(c)
            if not replies:
                continue
            t = now()
            for code, payload in replies:
                if t >= t_meas:
                    lat.append(t - c.t)
                    done += 1
                    nbytes += payload
                    if code not in expect:
                        bad += 1
            c.fresh = False
            c.t = t
            send(c)
        if t >= next_scan:
            next_scan = t + 250_000_000
            for c in loop.conns:
                if c.busy and t - c.t > timeout_ns:
                    if t >= t_meas:
                        timeouts += 1
                    loop.reopen(c, resend=False)
                    c.t = now()
                    send(c)
    cpu_end = cpu()
    conn_errors = loop.conn_errors - (errors_before if errors_before is not None else loop.conn_errors)
    loop.close()
    return ProcResult(done, bad, timeouts, conn_errors, 0, nbytes, done, lat.tobytes(),
                      cpu_end - (cpu_start if cpu_start is not None else cpu_end), loop.reconnects)


def open_loop(spec: LoadSpec, rate: float, share: int, offset: int, t0: int, cpu) -> ProcResult:
    """Requests due at ``rate`` per second, each sent on the next idle connection;
    latency from the time it was due."""
    now = time.monotonic_ns
    loop = _Loop(spec, share, offset)
    lat = array("q")
    interval = 1e9 / rate
    t_meas = t0 + int(spec.warmup * 1e9)
    t_end = t_meas + int(spec.duration * 1e9)
    grace_end = t_end + int(spec.timeout * 1e9)
    timeout_ns = int(spec.timeout * 1e9)
    expect, by_fd, poll, read, send = spec.expect, loop.by_fd, loop.ep.poll, loop.read, loop.send
    due: collections.deque[int] = collections.deque()
    idle = list(loop.conns)
    sent = done = failed = bad = nbytes = k = 0
    next_t = t0
    cpu_start = None
    while now() < t0:
        time.sleep(0.0005)
    next_scan = t0 + 250_000_000
    while True:
        t = now()
        if t < t_end:
            if cpu_start is None and t >= t_meas:
                cpu_start = cpu()
            while next_t <= t:
                due.append(next_t)
                if next_t >= t_meas:
                    sent += 1
                k += 1
                next_t = t0 + int(k * interval)
        elif done + failed >= sent or t >= grace_end:
            break
        while due and idle:
            c = idle.pop()
            c.t = due.popleft()
            if not send(c) and not c.busy:
                if t_meas <= c.t < t_end:
                    failed += 1
                if c.sock is not None:
                    idle.append(c)
        if idle and not due and t < t_end:
            wait = max(0.0, (next_t - now()) / 1e9 - 0.0001)
        elif due and idle:
            wait = 0.0
        else:
            wait = 0.01
        for fd, _ in poll(min(wait, 0.01)):
            c = by_fd.get(fd)
            if c is None:
                continue
            replies = read(c)
            if not replies:
                if not c.busy and c.sock is not None and c not in idle:
                    idle.append(c)
                continue
            t2 = now()
            for code, payload in replies:
                if t_meas <= c.t < t_end:
                    lat.append(t2 - c.t)
                    done += 1
                    nbytes += payload
                    if code not in expect:
                        bad += 1
            c.fresh = False
            c.busy = False
            idle.append(c)
        if t >= next_scan:
            next_scan = t + 250_000_000
            for c in loop.conns:
                if c.busy and t - c.t > timeout_ns:
                    if t_meas <= c.t < t_end:
                        failed += 1
                    loop.reopen(c, resend=False)
                    if c.sock is not None and c not in idle:
                        idle.append(c)
    cpu_end = cpu()
    loop.close()
    return ProcResult(done, bad, max(0, sent - done - failed) + failed, loop.conn_errors, 0, nbytes, sent,
                      lat.tobytes(), cpu_end - (cpu_start if cpu_start is not None else cpu_end), loop.reconnects)
