"""What a process costs, read from /proc, and which cores each side runs on.

CPU time is utime + stime of the process and its descendants (so a later
multi-worker node is counted whole); RSS is the sum of their VmRSS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class CpuPlan:
    """Cores for the server under test and for the load; ``pinned`` False
    when the machine has fewer than two CPUs to give."""
    server: frozenset[int]
    load: frozenset[int]
    pinned: bool

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned (fewer than 2 CPUs available): node and load share the machine"
        s = ",".join(map(str, sorted(self.server)))
        load = ",".join(map(str, sorted(self.load)))
        return f"node (and each ceiling server) pinned to CPU {s}; load generators pinned to CPU {load}"


def cpu_plan() -> CpuPlan:
    """Server on the first allowed CPU, load on the others."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    if len(allowed) < 2:
        every = frozenset(allowed)
        return CpuPlan(every, every, False)
    return CpuPlan(frozenset(allowed[:1]), frozenset(allowed[1:]), True)


def pin(cpus: frozenset[int] | set[int], pid: int = 0) -> None:
    """Pin a process (this one by default); quietly does nothing where unsupported."""
    try:
        os.sched_setaffinity(pid, cpus)
    except (AttributeError, OSError):
        pass


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        pass
    return out


def _tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += _children(p)
    return seen


def _cpu_of(pid: int) -> float:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(b")") + 2:].split()      # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / _TICKS   # utime, stime


def _rss_of(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its descendants."""
    return sum(_cpu_of(p) for p in _tree(pid))


def rss_bytes(pid: int) -> int:
    return sum(_rss_of(p) for p in _tree(pid))


def system_busy_seconds() -> float:
    """User + nice + system time of every CPU so far (no idle, iowait or
    interrupt time): compared with what the processes of a run used, it shows
    how much CPU other processes on the machine took meanwhile."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return 0.0
    total = 0
    for line in lines:
        if line.startswith("cpu") and line[3:4].isdigit():
            f = line.split()
            total += int(f[1]) + int(f[2]) + int(f[3])
    return total / _TICKS


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
