"""Results as JSON, a markdown table and plots; the validity flags.

One JSON file per scenario (``<date>-<scenario>.json``) holds everything
measured for it, its ceiling, the kind of records (``"records"``) and the
run's context (machine, cores, options); ``<date>-summary.md`` holds the
tables printed at the end; ``<date>-*.png`` the plots (:mod:`bench.plots`).
With ``--records small`` or ``mixed`` every name starts ``<date>-small-`` or
``<date>-mixed-`` instead, so runs of different kinds sit side by side.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from . import external
from .loadspec import LoadResult
from .stats import Latency, summarise

if TYPE_CHECKING:
    from .runner import Run
    from .scenarios import Scenario

BUSY_FLOOR = 0.90        # below this at "maximum" throughput, the server was not the limit
DISTURBED = 0.10         # cores' worth of CPU other processes took: the run was disturbed


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = 0
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem / 2**30, 1),
            "kernel": platform.release(), "python": sys.version.split()[0],
            "implementation": platform.python_implementation(), "uvloop": _version("uvloop"),
            "aiohttp": _version("aiohttp"), "idnode": _version("idnode")}


def context(r: "Run") -> dict:
    opts = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(r.opts).items()}
    return {"date": r.stamp, "machine": machine(), "cores": r.plan.describe(), "pinned": r.plan.pinned,
            "generator_processes": r.procs, "options": opts,
            "wrk": external.wrk_path() or external.WRK_HINT}


# ------------------------------------------------------------------ entries

def _base(s: "Scenario") -> dict:
    return {"scenario": s.name, "kind": s.kind, "protocol": s.protocol, "keys": s.keys, "doc": s.doc}


def skipped(s: "Scenario", why: str) -> dict:
    return {**_base(s), "skipped": why}


def failed(s: "Scenario", why: str) -> dict:
    return {**_base(s), "failed": why}


def _lat(result) -> Latency:
    return result.latency if hasattr(result, "latency") else summarise(result.latencies)


def _common(measured) -> dict:
    """Throughput, latency, errors and costs of one closed-loop run (python generator or wrk)."""
    result, body_bytes, attempts = measured
    lat = _lat(result)
    if isinstance(result, LoadResult):
        done, seconds = result.done, result.spec.duration
        errors = {"total": result.errors, "unexpected_code": result.bad, "timeouts": result.timeouts,
                  "connection": result.conn_errors, "stray_replies": result.stray, "reconnects": result.reconnects}
        reply = body_bytes if body_bytes is not None else result.mean_reply_bytes
        gen_busy = round(result.generator_busy, 3)
        cpu, rss = result.server_cpu, result.server_rss
        other = round(result.other_busy, 3)
    else:                                   # external.WrkResult
        done, seconds = result.requests, result.seconds
        errors = {"total": result.errors}
        reply = body_bytes or 0.0
        gen_busy = other = None
        cpu, rss = result.server_cpu, result.server_rss
    rps = done / seconds if seconds else 0.0
    return {"throughput_rps": round(rps, 1), "requests": done, "seconds": seconds,
            "latency": lat.as_dict(), "errors": errors, "ceiling_reply_bytes": round(reply, 1),
            "server": {"cpu_seconds": round(cpu, 3), "busy": round(cpu / seconds, 3) if seconds else 0.0,
                       "cpu_s_per_1k": round(cpu / done * 1000, 4) if done else None,
                       "rss_mb": round(rss / 2**20, 1)},
            "generator_busy": gen_busy, "other_processes_busy": other, "attempts": attempts}


def load_entry(s: "Scenario", measured, *, items: int, generator: str, keyset, cache: str, procs: int) -> dict:
    result = measured[0]
    out = {**_base(s), "mode": "closed", "generator": generator, "generator_processes": procs, "cache": cache,
           **_common(measured), "items_per_request": items}
    if isinstance(result, LoadResult):
        out["concurrency"] = result.spec.concurrency
    out["items_per_second"] = round(out["throughput_rps"] * items, 1)
    if keyset is not None:
        out["keyset"] = {"distinct": keyset.distinct, "pool": len(keyset.handles), "note": keyset.note}
    out["node"] = out.pop("server")
    return out


def combined_entry(s: "Scenario", each: list[dict], **extra) -> dict:
    """One load spread over several node instances: throughput and errors
    summed, CPU summed over the instances, latency that of the slower one;
    every instance's own entry under ``instances``."""
    done = sum(e["requests"] for e in each)
    cpu = sum(e["node"]["cpu_seconds"] for e in each)
    seconds = max(e["seconds"] for e in each)
    slowest = max(each, key=lambda e: e["latency"].get("p99_us") or 0)
    return {**_base(s), "mode": "closed", **extra, "throughput_rps": round(sum(e["throughput_rps"] for e in each), 1),
            "requests": done, "seconds": seconds, "latency": slowest["latency"],
            "errors": {"total": sum(e["errors"]["total"] for e in each)},
            "node": {"cpu_seconds": round(cpu, 3), "busy": round(cpu / seconds, 3) if seconds else 0.0,
                     "cpu_s_per_1k": round(cpu / done * 1000, 4) if done else None},
            "instances": each}


def point(fraction: float, result: LoadResult, attempts: int = 1) -> dict:
    lat = summarise(result.latencies)
    d = lat.as_dict()
    return {"fraction": fraction, "offered_rps": round(result.spec.rate, 1),
            "achieved_rps": round(result.achieved_rate, 1),
            "throughput_rps": round(result.throughput, 1),
            "latency": {k: v for k, v in d.items() if k != "cdf"}, "cdf": d["cdf"],
            "errors": result.errors, "server_busy": round(result.server_busy, 3),
            "generator_busy": round(result.generator_busy, 3), "other_processes_busy": round(result.other_busy, 3),
            "attempts": attempts}


def open_entry(s: "Scenario", peak: float, points: list[dict], *, procs: int) -> dict:
    return {**_base(s), "mode": "open", "generator": "python", "generator_processes": procs,
            "closed_loop_max_rps": round(peak, 1), "points": points}


def import_entry(s: "Scenario", *, rows: int, seconds: float, startup: float, cpu: float, max_rss: int,
                 summary: str, row_bytes: int, prefixes: int) -> dict:
    net = max(1e-9, seconds - startup)
    return {**_base(s), "mode": "batch", "rows": rows, "seconds": round(seconds, 3),
            "throughput_rps": round(rows / seconds, 1), "throughput_without_startup_rps": round(rows / net, 1),
            "startup_seconds": round(startup, 3), "row_bytes": row_bytes, "prefixes": prefixes,
            "node": {"cpu_seconds": round(cpu, 3), "busy": round(cpu / seconds, 3),
                     "cpu_s_per_1k": round(cpu / rows * 1000, 4) if rows else None,
                     "rss_mb": round(max_rss / 2**20, 1)},
            "errors": {"total": 0}, "summary": summary}


def ceiling_entry(name: str, kind: str, size: int, measured, generator: str, *, content_type: str,
                  shape: str) -> dict:
    c = _common(measured)
    return {"name": name, "kind": kind, "reply_bytes": size, "shape": shape, "content_type": content_type,
            "generator": generator, **c}


def redis_entry(res: "external.RedisResult") -> dict:
    lat = {"p50_us": res.p50_us, "p99_us": res.p99_us}
    return {"name": f"redis-server {res.test} (redis-benchmark)", "kind": "redis", "reply_bytes": res.value_bytes,
            "throughput_rps": round(res.rps, 1), "latency": lat, "clients": res.clients,
            "server": {"busy": round(res.server_busy, 3)}, "version": res.version,
            "note": "a C server on the same core with its own C client: a reference, not a ratio"}


def attach_ceiling(entry: dict, ceiling: dict) -> None:
    entry["ceiling"] = {k: ceiling.get(k) for k in ("name", "kind", "reply_bytes", "throughput_rps", "generator")}
    entry["ceiling"]["p99_us"] = (ceiling.get("latency") or {}).get("p99_us")
    entry["ceiling"]["server_busy"] = (ceiling.get("server") or {}).get("busy")
    mine = entry.get("throughput_rps") or entry.get("closed_loop_max_rps")
    theirs = ceiling.get("throughput_rps")
    entry["ratio"] = float(f"{mine / theirs:.4g}") if mine and theirs else None
    # Per core: requests per CPU-second of the node against the ceiling's. The
    # same as the ratio when both are 100% busy; the honest figure when the
    # generator, not the ceiling server, set the ceiling's throughput.
    mine_busy = (entry.get("node") or {}).get("busy")
    theirs_busy = entry["ceiling"]["server_busy"]
    entry["cpu_ratio"] = (float(f"{(mine / mine_busy) / (theirs / theirs_busy):.4g}")
                          if mine and theirs and mine_busy and theirs_busy else None)


# ------------------------------------------------------------------ flags and text

def flags(entry: dict) -> list[str]:
    """Why a figure may not mean what it seems to."""
    out = []
    if entry.get("skipped") or entry.get("failed"):
        return out
    if entry.get("kind") == "import":
        out.append(f"{entry['rows']:,} rows in {entry['seconds']:.1f} s including ~{entry['startup_seconds']:.1f} s "
                   f"start-up ({fmt_rate(entry['throughput_without_startup_rps'])} without it)")
    server = entry.get("node") or entry.get("server") or {}
    busy = server.get("busy")
    if entry.get("mode") == "closed" and busy is not None and busy < BUSY_FLOOR:
        gen = entry.get("generator_busy")
        gen_text = f", generator {gen:.0%} busy" if gen is not None else ""
        who = "server" if "name" in entry else "node"
        out.append(f"{who} CPU {busy:.0%} busy at maximum throughput: limited by something else{gen_text}")
    errors = (entry.get("errors") or {}).get("total") or 0
    if errors:
        out.append(f"{errors} errors")
    other = entry.get("other_processes_busy")
    if other is not None and other > DISTURBED:
        out.append(f"disturbed: other processes took {other:.0%} of a core (best of {entry.get('attempts', 1)} runs)")
    for p in entry.get("points", []):
        if (p.get("other_processes_busy") or 0) > DISTURBED:
            out.append(f"at {p['fraction']:.0%} disturbed: other processes took "
                       f"{p['other_processes_busy']:.0%} of a core")
        if p["offered_rps"] and p["achieved_rps"] < 0.95 * p["offered_rps"]:
            out.append(f"at {p['fraction']:.0%} the generator offered only {p['achieved_rps']:.0f}/s")
        if p["errors"]:
            out.append(f"at {p['fraction']:.0%}: {p['errors']} errors")
    ceiling = entry.get("ceiling") or {}
    if ceiling.get("server_busy") is not None and ceiling["server_busy"] < BUSY_FLOOR and "ratio" in entry:
        out.append(f"its ceiling was {ceiling['server_busy']:.0%} busy: the ratio is flattered; read the ratio "
                   "per core")
    return out


def fmt_us(us: float | None) -> str:
    if us is None:
        return "-"
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def fmt_rate(rps: float | None) -> str:
    if rps is None:
        return "-"
    return f"{rps / 1000:.1f}k/s" if rps >= 10_000 else f"{rps:,.0f}/s"


def one_line(entry: dict) -> str:
    if entry.get("skipped"):
        return f"skipped: {entry['skipped']}"
    if entry.get("failed"):
        return f"FAILED: {entry['failed']}"
    if entry.get("mode") == "open":
        return "; ".join(f"{p['fraction']:.0%} {fmt_rate(p['offered_rps'])} p99 {fmt_us(p['latency']['p99_us'])}"
                         for p in entry["points"])
    lat = entry.get("latency") or {}
    busy = (entry.get("node") or entry.get("server") or {}).get("busy")
    text = f"{fmt_rate(entry.get('throughput_rps'))}"
    if entry.get("items_per_request", 1) > 1:
        text += f" ({fmt_rate(entry['items_per_second'])} items)"
    if lat.get("p99_us") is not None:
        text += f", p50 {fmt_us(lat.get('p50_us'))}, p99 {fmt_us(lat.get('p99_us'))}"
    if busy is not None:
        text += f", server {busy:.0%} busy"
    errors = (entry.get("errors") or {}).get("total")
    if errors:
        text += f", {errors} errors"
    return text


def file_prefix(stamp: str, records: str, workers: int = 1, store: str = "sqlite") -> str:
    """``<date>`` for large records (the names results always had), else
    ``<date>-<kind>``; then ``-w<N>`` for a node of N > 1 workers, and
    ``-redis`` or ``-cluster`` for a registry on Redis."""
    prefix = stamp if records == "large" else f"{stamp}-{records}"
    prefix = prefix if workers == 1 else f"{prefix}-w{workers}"
    return prefix if store == "sqlite" else f"{prefix}-{store}"


def finish(r: "Run") -> dict:
    from . import plots, tables

    kind = r.opts.records
    prefix = file_prefix(r.stamp, kind, r.opts.workers, r.opts.store)
    for entry in list(r.results.values()) + r.ceilings:
        entry["flags"] = flags(entry)
    out_dir = Path(r.opts.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = [n for n in (r.hs_note, r.cache_note) if n]
    files = []
    for name, entry in r.results.items():
        path = out_dir / f"{prefix}-{name}.json"
        path.write_bytes(orjson.dumps({**entry, "records": kind, "context": r.context, "notes": notes},
                                      option=orjson.OPT_INDENT_2))
        files.append(path)
    ceilings_path = out_dir / f"{prefix}-ceilings.json"
    ceilings_path.write_bytes(orjson.dumps({"ceilings": r.ceilings, "records": kind, "context": r.context},
                                           option=orjson.OPT_INDENT_2))
    files.append(ceilings_path)
    text = tables.markdown(r.results, r.ceilings, r.context, notes)
    md = out_dir / f"{prefix}-summary.md"
    md.write_text(text, encoding="utf-8")
    files.append(md)
    pngs, plot_note = plots.draw(r.results, r.ceilings, out_dir, prefix)
    files += pngs
    r.say("")
    r.say(text)
    if plot_note:
        r.say(plot_note)
    r.say("written: " + ", ".join(str(p) for p in files[-4:]) + f" and {len(files) - 4} more in {out_dir}"
          if len(files) > 4 else "written: " + ", ".join(map(str, files)))
    return {"stamp": r.stamp, "records": kind, "results": r.results, "ceilings": r.ceilings, "context": r.context,
            "notes": notes, "files": [str(p) for p in files], "summary": str(md)}
