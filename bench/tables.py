"""The markdown summary: one table of maxima with their ceilings and ratios,
one of open-loop latency against offered load, one of the ceilings."""

from __future__ import annotations

from . import targets
from .report import fmt_rate, fmt_us


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: list[str], rows: list[list]) -> list[str]:
    return [_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows)]


def _ratio(entry: dict, key: str = "ratio") -> str:
    ratio = entry.get(key)
    return f"{ratio:.2f}" if ratio is not None else "-"


def _main_rows(results: dict) -> list[list]:
    rows = []
    for name, e in results.items():
        if e.get("mode") == "open":
            continue
        if e.get("skipped") or e.get("failed"):
            rows.append([name, "", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                         ("skipped: " + e["skipped"]) if e.get("skipped") else ("FAILED: " + e["failed"])])
            continue
        lat = e.get("latency") or {}
        node = e.get("node") or {}
        ceiling = e.get("ceiling") or {}
        rate = fmt_rate(e.get("throughput_rps"))
        if e.get("items_per_request", 1) > 1:
            rate += f" ({fmt_rate(e['items_per_second'])} ids)"
        per_1k = node.get("cpu_s_per_1k")
        rows.append([name, e.get("cache", ""), rate, fmt_rate(ceiling.get("throughput_rps")), _ratio(e),
                     _ratio(e, "cpu_ratio"),
                     fmt_us(lat.get("p50_us")), fmt_us(lat.get("p90_us")), fmt_us(lat.get("p99_us")),
                     fmt_us(lat.get("p99.9_us")), f"{per_1k:.3f}" if per_1k is not None else "-",
                     f"{node['busy']:.0%}" if node.get("busy") is not None else "-",
                     node.get("rss_mb", "-"), (e.get("errors") or {}).get("total", 0), "; ".join(e.get("flags", []))])
    return rows


def _open_rows(results: dict, ceilings: list[dict]) -> list[list]:
    by_name = {}
    for c in ceilings:
        for n in c.get("for", []):
            by_name[n] = c
    rows = []
    for name, e in results.items():
        if e.get("mode") != "open":
            continue
        if e.get("skipped") or e.get("failed"):
            rows.append([name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", e.get("skipped") or e.get("failed")])
            continue
        cpoints = {p["fraction"]: p for p in (by_name.get(name) or {}).get("open_points", [])}
        for p in e["points"]:
            lat, cp = p["latency"], cpoints.get(p["fraction"])
            rows.append([name, f"{p['fraction']:.0%}", fmt_rate(p["offered_rps"]), fmt_rate(p["achieved_rps"]),
                         fmt_us(lat["p50_us"]), fmt_us(lat["p90_us"]), fmt_us(lat["p99_us"]),
                         fmt_us(lat["p99.9_us"]), f"{p['server_busy']:.0%}", p["errors"],
                         fmt_us(cp["latency"]["p99_us"]) if cp else "-",
                         fmt_us(cp["latency"]["p99.9_us"]) if cp else "-"])
    return rows


def _ceiling_rows(ceilings: list[dict]) -> list[list]:
    rows = []
    for c in ceilings:
        lat = c.get("latency") or {}
        server = c.get("server") or {}
        gen = c.get("generator_busy")
        rows.append([c["name"], c.get("reply_bytes", "-"), c.get("shape", c.get("kind", "")),
                     fmt_rate(c.get("throughput_rps")), fmt_us(lat.get("p50_us")), fmt_us(lat.get("p99_us")),
                     f"{server['busy']:.0%}" if server.get("busy") is not None else "-",
                     f"{gen:.0%}" if gen is not None else "-", ", ".join(c.get("for", [])) or "-",
                     "; ".join(c.get("flags", [])) or c.get("note", "")])
    return rows


def _rest_generator(wrk: str) -> str:
    """``context["wrk"]`` is wrk's path when installed, else the hint how to get it."""
    return f"wrk ({wrk})" if wrk.startswith("/") else f"Python ({wrk})"


_RECORDS = {"large": "4-8 values, 300-600 B", "small": "URL + HS_ADMIN, one datagram",
            "mixed": "70% small, 30% large"}


_STORES = {"sqlite": "the embedded SQLite file (WAL, synchronous=FULL)",
           "redis": "a redis-server of the run's own (append-only, fsync every second), on the node's core",
           "cluster": "a Redis Cluster of the run's own, 3 masters and 3 replicas, on the node's core; writes "
                      "wait for one replica"}


def _records(opts: dict) -> str:
    kind = opts.get("records", "large")
    return f"{kind} records ({_RECORDS.get(kind, '?')})"


def markdown(results: dict, ceilings: list[dict], context: dict, notes: list[str]) -> str:
    m = context["machine"]
    opts = context["options"]
    lines = [f"# idnode bench {context['date']}", "",
             f"- machine: {m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), {m['memory_gb']} GB, "
             f"Linux {m['kernel']}; Python {m['python']}, uvloop {m['uvloop']}, aiohttp {m['aiohttp']}",
             f"- cores: {context['cores']}; {context['generator_processes']} generator process(es); "
             f"node workers: {opts.get('workers', 1)}",
             f"- {opts['size']:,} identifiers, {_records(opts)}; {opts['duration']:g} s per closed-loop run after "
             f"{opts['warmup']:g} s warm-up; open loop {opts['open_duration']:g} s per rate"
             + ("; quick mode (a smoke run, not a timing)" if opts.get("quick") else ""),
             f"- REST generator: {_rest_generator(context['wrk'])}",
             f"- registry: {_STORES.get(opts.get('store', 'sqlite'), '?')}"]
    lines += [f"- note: {n}" for n in notes]
    lines += ["", "## Maximum throughput (closed loop) and writes", ""]
    lines += _table(["scenario", "cache", "throughput", "ceiling", "ratio", "per core", "p50", "p90", "p99", "p99.9",
                     "node CPU s/1k req", "node busy", "RSS MB", "errors", "flags"], _main_rows(results))
    open_rows = _open_rows(results, ceilings)
    if open_rows:
        lines += ["", "## Latency against offered load (open loop, from the intended send time)", ""]
        lines += _table(["scenario", "of max", "offered", "achieved", "p50", "p90", "p99", "p99.9", "node busy",
                         "errors", "ceiling p99", "ceiling p99.9"], open_rows)
        lines += [""] + [f"- {name}: {'; '.join(e['flags'])}" for name, e in results.items()
                         if e.get("mode") == "open" and e.get("flags")]
    target_rows = [[figure, measured, target, "yes" if met else "no"]
                   for figure, measured, target, met in targets.rows(results, opts.get("records", "large"), ceilings)]
    if target_rows:
        lines += ["", "## Targets of the resolution path (issue 11), from this run", ""]
        lines += _table(["figure", "measured", "target", "met"], target_rows)
    lines += ["", "## Ceilings (same cores, same generator, same reply sizes)", ""]
    lines += _table(["ceiling", "reply bytes", "shape", "throughput", "p50", "p99", "server busy",
                     "generator busy", "ceiling of", "flags / notes"], _ceiling_rows(ceilings))
    return "\n".join(lines) + "\n"
