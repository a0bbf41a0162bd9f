"""The resolution path's targets (issue 11), read off one run's results.

Each row is a ratio of figures measured in the same run: the node against
its ceiling per core (requests per CPU-second, see README "per core"), cold
against hot per core, the open-loop p99 at half of the maximum against the
bare responder's p99 at the same offered rate, and the import against bare
sqlite3. A row whose scenarios did not run is left out.
"""

from __future__ import annotations

from typing import Iterator

IMPORT_RATES = {"sqlite": 100_000, "redis": 150_000, "cluster": 150_000}   # rows/s: absolute targets (issues 11, 12)
_STORE_NAMES = {"sqlite": "SQLite", "redis": "Redis", "cluster": "a Redis Cluster"}


def per_core(e: dict) -> float | None:
    """Requests per CPU-second of the node."""
    busy = (e.get("node") or {}).get("busy")
    rps = e.get("throughput_rps")
    return rps / busy if rps and busy else None


def _ok(e: dict | None) -> bool:
    return bool(e) and not e.get("skipped") and not e.get("failed")


def rows(results: dict, records: str, ceilings: list[dict] = ()) -> Iterator[tuple[str, str, str, bool]]:
    """``(figure, measured, target, met)`` for every target this run measured
    (``ceilings``: the run's, for the bare responder's open-loop points)."""
    udp_hot = 0.90 if records == "large" else 0.85      # multi-datagram answers, or one datagram
    for proto, label, target in (("hs-udp", "HS-UDP", udp_hot), ("hs-tcp", "HS-TCP", 0.90),
                                 ("rest", "REST", 0.90)):
        hot = results.get(f"{proto}-hot")
        if _ok(hot) and hot.get("cpu_ratio") is not None:
            yield (f"{label} hot against its bare server, per core", f"{hot['cpu_ratio']:.2f}",
                   f">= {target:.2f}", hot["cpu_ratio"] >= target)
        cold = results.get(f"{proto}-cold")
        if _ok(hot) and _ok(cold) and per_core(hot) and per_core(cold):
            ratio = per_core(cold) / per_core(hot)
            yield (f"{label} cold (cache off) against hot, per core", f"{ratio:.2f}", ">= 0.50", ratio >= 0.5)
    open_udp = results.get("hs-udp-hot-open")
    ceiling = next((c for c in ceilings if "hs-udp-hot-open" in c.get("for", ())), None) \
        or (open_udp or {}).get("ceiling") or {}
    if _ok(open_udp):
        half = [p for p in open_udp.get("points", []) if abs(p["fraction"] - 0.5) < 0.01]
        theirs = {round(p["fraction"], 2): p for p in ceiling.get("open_points", [])}
        if half and 0.5 in theirs and theirs[0.5]["latency"]["p99_us"]:
            ratio = half[0]["latency"]["p99_us"] / theirs[0.5]["latency"]["p99_us"]
            yield ("HS-UDP p99 at 50% of the maximum against the bare responder's at the same rate",
                   f"{ratio:.2f}x", "<= 1.30x", ratio <= 1.3)
    imported = results.get("import")
    if _ok(imported) and imported.get("throughput_rps"):
        rate = imported["throughput_rps"]
        store = imported.get("store", "sqlite")
        target = IMPORT_RATES[store]
        ratio = f" ({imported['ratio']:.2f} of bare sqlite3)" if imported.get("ratio") else ""
        yield (f"`idnode import` into {_STORE_NAMES[store]}, rows/s", f"{rate:,.0f}{ratio}", f">= {target:,}",
               rate >= target)
