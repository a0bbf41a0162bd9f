"""HS protocol over UDP: the load loops, run inside a generator process.

Requests are pre-encoded; sending one is a ``struct.pack_into`` of the
request id and a ``send``. A reply is never decoded: the generator reads
the request id, sequence number, message length and response code at fixed
offsets (:mod:`bench.wire`) and counts the packets of multi-packet replies.

Closed loop: ``share`` requests in flight, each answered one replaced by the
next at once; latency from the actual send. Open loop: requests at fixed
intended times whatever the replies do; latency from the intended send time,
so a server (or generator) falling behind shows up as latency, not as a
quietly lower rate.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from array import array

from .loadspec import LoadSpec, ProcResult

_REPLY = struct.Struct(">IIIII")        # request id, sequence, message length, opCode, response code at offset 8
_RID = struct.Struct(">I")
_PAYLOAD = 492
_RING = 1 << 18
_MAX_RID = 1 << 31


def _socket(spec: LoadSpec) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
    sock.connect((spec.host, spec.port))
    return sock


def closed(spec: LoadSpec, share: int, offset: int, t0: int, cpu) -> ProcResult:
    """``share`` requests in flight until the end of the window."""
    now = time.monotonic_ns
    sock = _socket(spec)
    sock.settimeout(0.05)
    recv_into, send, unpack, pack_into = sock.recv_into, sock.send, _REPLY.unpack_from, _RID.pack_into
    pool = [bytearray(r) for r in spec.requests]
    npool, pos = len(pool), offset % len(pool)
    w = share
    slot_rid = [s + 1 for s in range(w)]
    slot_t = [0] * w
    slot_left = [0] * w
    rbuf = bytearray(65536)
    lat = array("q")
    t_meas = t0 + int(spec.warmup * 1e9)
    t_end = t_meas + int(spec.duration * 1e9)
    timeout_ns = int(spec.timeout * 1e9)
    expect = spec.expect
    done = bad = timeouts = stray = nbytes = 0
    cpu_start = cpu_end = None

    while now() < t0:
        time.sleep(0.0005)
    for s in range(w):
        buf = pool[pos]
        pos = (pos + 1) % npool
        pack_into(buf, 8, slot_rid[s])
        slot_t[s] = now()
        send(buf)
    next_scan = now() + 250_000_000
    while True:
        try:
            recv_into(rbuf)
        except socket.timeout:
            t = now()
            if t >= t_end:
                break
            next_scan = t                            # idle: look for lost requests now
        else:
            t = now()
            rid, seq, mlen, _, rc = unpack(rbuf, 8)
            s = (rid - 1) % w
            if slot_rid[s] != rid or not slot_t[s]:
                stray += 1
                continue
            left = slot_left[s]
            if not left:
                left = (mlen + _PAYLOAD - 1) // _PAYLOAD
                if t >= t_meas:
                    nbytes += mlen + 20
            if seq == 0 and rc not in expect and t >= t_meas:
                bad += 1
            left -= 1
            slot_left[s] = left
            if left:
                continue
            if t >= t_meas:
                if cpu_start is None:
                    cpu_start = cpu()
                if t >= t_end:
                    break
                lat.append(t - slot_t[s])
                done += 1
            rid += w
            if rid >= _MAX_RID:
                rid = s + 1
            slot_rid[s] = rid
            buf = pool[pos]
            pos += 1
            if pos == npool:
                pos = 0
            pack_into(buf, 8, rid)
            slot_t[s] = now()
            send(buf)
        if t >= next_scan:                           # lost datagrams: count them, send anew
            next_scan = t + 250_000_000
            for s in range(w):
                if t - slot_t[s] > timeout_ns:
                    if t >= t_meas:
                        timeouts += 1
                    rid = slot_rid[s] + w
                    slot_rid[s] = rid if rid < _MAX_RID else s + 1
                    slot_left[s] = 0
                    buf = pool[pos]
                    pos = (pos + 1) % npool
                    pack_into(buf, 8, slot_rid[s])
                    slot_t[s] = now()
                    send(buf)
    cpu_end = cpu()
    sock.close()
    return ProcResult(done, bad, timeouts, 0, stray, nbytes, done, lat.tobytes(),
                      (cpu_end - (cpu_start if cpu_start is not None else cpu_end)), 0)


def open_loop(spec: LoadSpec, rate: float, offset: int, t0: int, cpu) -> ProcResult:
    """Requests at ``rate`` per second from ``t0``; replies read as they come."""
    now = time.monotonic_ns
    sock = _socket(spec)
    sock.setblocking(False)
    recv_into, send, unpack, pack_into = sock.recv_into, sock.send, _REPLY.unpack_from, _RID.pack_into
    pool = [bytearray(r) for r in spec.requests]
    npool, pos = len(pool), offset % len(pool)
    ring_rid = [0] * _RING
    ring_t = [0] * _RING
    ring_left = [0] * _RING
    mask = _RING - 1
    rbuf = bytearray(65536)
    lat = array("q")
    interval = 1e9 / rate
    t_meas = t0 + int(spec.warmup * 1e9)
    t_end = t_meas + int(spec.duration * 1e9)
    grace_end = t_end + int(spec.timeout * 1e9)
    expect = spec.expect
    sent = done = bad = stray = nbytes = 0
    rid, k = 1, 0
    next_t = t0
    cpu_start = None
    while now() < t0:
        time.sleep(0.0005)
    while True:
        t = now()
        if t < t_end:
            if cpu_start is None and t >= t_meas:
                cpu_start = cpu()
            while next_t <= t:                       # every request that is due, late or not
                buf = pool[pos]
                pos += 1
                if pos == npool:
                    pos = 0
                s = rid & mask
                ring_rid[s] = rid
                ring_t[s] = next_t
                ring_left[s] = 0
                pack_into(buf, 8, rid)
                try:
                    send(buf)
                except BlockingIOError:
                    pass                              # the kernel dropped it: it will count as lost
                if t_meas <= next_t < t_end:
                    sent += 1
                rid += 1
                if rid >= _MAX_RID:
                    rid = 1
                k += 1
                next_t = t0 + int(k * interval)
        elif done >= sent or t >= grace_end:
            break
        for _ in range(256):
            try:
                recv_into(rbuf)
            except BlockingIOError:
                break
            t2 = now()
            r, seq, mlen, _, rc = unpack(rbuf, 8)
            s = r & mask
            if ring_rid[s] != r:
                stray += 1
                continue
            left = ring_left[s]
            intended = ring_t[s]
            in_window = t_meas <= intended < t_end
            if not left:
                left = (mlen + _PAYLOAD - 1) // _PAYLOAD
                if in_window:
                    nbytes += mlen + 20
            if seq == 0 and rc not in expect and in_window:
                bad += 1
            left -= 1
            ring_left[s] = left
            if left:
                continue
            ring_rid[s] = 0
            if in_window:
                lat.append(t2 - intended)
                done += 1
        else:
            continue                                 # more replies waiting: read on before sleeping
        wait = (next_t - now()) / 1e9 if t < t_end else 0.01
        if wait > 0.0002:
            select.select([sock], [], [], min(wait - 0.0001, 0.01))
    cpu_end = cpu()
    sock.close()
    return ProcResult(done, bad, max(0, sent - done), 0, stray, nbytes, sent, lat.tobytes(),
                      cpu_end - (cpu_start if cpu_start is not None else cpu_end), 0)
