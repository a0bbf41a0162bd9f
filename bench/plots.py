"""PNG plots: latency CDF per scenario, latency against offered load.

The CDF's y axis is stretched towards the tail (50%, 90%, 99%, 99.9%,
99.99% evenly spaced), so the percentiles that matter are readable; its x
axis is logarithmic. Ceilings are drawn dashed in the panel of their
protocol. matplotlib comes with the ``bench`` extra; without it the plots
are skipped with a note and everything else is written.
"""

from __future__ import annotations

import math
from pathlib import Path

_PANELS = (("hs-udp", "HS over UDP"), ("hs-tcp", "HS over TCP"), ("rest", "REST GET"),
           ("cbor", "CBOR batch resolve"), ("register", "registration"))
_CEILING_PANEL = {"udp": "hs-udp", "tcp": "hs-tcp"}
_TAIL_TICKS = (0.5, 0.9, 0.99, 0.999, 0.9999)


def _tail(q: float) -> float:
    """Distance into the tail: 50% -> 0.3, 99% -> 2, 99.99% -> 4; the maximum at 5."""
    return -math.log10(max(1e-5, 1.0 - q))


def _panel_of(entry: dict) -> str:
    if entry.get("kind") == "register":
        return "register"
    return entry.get("protocol", "")


def _ceiling_panels(c: dict, results: dict) -> set[str]:
    if c.get("kind") in _CEILING_PANEL:
        return {_CEILING_PANEL[c["kind"]]}
    return {_panel_of(results[n]) for n in c.get("for", []) if n in results}


def draw(results: dict, ceilings: list[dict], out_dir: Path, stamp: str) -> tuple[list[Path], str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "plots skipped: matplotlib is not installed (pip install '.[bench]')"
    written = []
    cdf = _cdf(plt, results, ceilings, out_dir / f"{stamp}-latency-cdf.png")
    if cdf:
        written.append(cdf)
    load = _load(plt, results, ceilings, out_dir / f"{stamp}-latency-vs-load.png")
    if load:
        written.append(load)
    return written, "" if written else "plots skipped: no latency was measured"


def _cdf(plt, results: dict, ceilings: list[dict], path: Path) -> Path | None:
    panels = [(key, title) for key, title in _PANELS
              if any(_panel_of(e) == key and e.get("latency", {}).get("cdf") for e in results.values())]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.6 * len(panels)), squeeze=False)
    for ax, (key, title) in zip(axes[:, 0], panels):
        for name, e in results.items():
            points = (e.get("latency") or {}).get("cdf")
            if _panel_of(e) != key or not points:
                continue
            ax.plot([max(v, 1.0) for _, v in points], [_tail(q) for q, _ in points], label=name)
        for c in ceilings:
            points = (c.get("latency") or {}).get("cdf")
            if points and key in _ceiling_panels(c, results):
                ax.plot([max(v, 1.0) for _, v in points], [_tail(q) for q, _ in points], "--",
                        label=f"ceiling: {c['name']} ({c['reply_bytes']} B)")
        ax.set_xscale("log")
        ax.set_yticks([_tail(q) for q in _TAIL_TICKS] + [_tail(1.0)], [f"{q * 100:g}%" for q in _TAIL_TICKS] + ["max"])
        ax.set_xlabel("latency (µs)")
        ax.set_ylabel("percentile")
        ax.set_title(f"{title}: latency CDF (closed loop)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _load(plt, results: dict, ceilings: list[dict], path: Path) -> Path | None:
    opened = [(n, e) for n, e in results.items() if e.get("mode") == "open" and e.get("points")]
    if not opened:
        return None
    by_name = {n: c for c in ceilings for n in c.get("for", [])}
    fig, axes = plt.subplots(len(opened), 1, figsize=(9, 3.6 * len(opened)), squeeze=False)
    for ax, (name, e) in zip(axes[:, 0], opened):
        xs = [p["offered_rps"] for p in e["points"]]
        for key, style in (("p50_us", "o-"), ("p99_us", "s-"), ("p99.9_us", "^-")):
            ax.plot(xs, [max(p["latency"][key], 1.0) for p in e["points"]], style, label=f"node {key[:-3]}")
        cpoints = (by_name.get(name) or {}).get("open_points") or []
        if cpoints:
            cx = [p["offered_rps"] for p in cpoints]
            for key, style in (("p50_us", "o--"), ("p99_us", "s--")):
                ax.plot(cx, [max(p["latency"][key], 1.0) for p in cpoints], style, alpha=0.7,
                        label=f"ceiling {key[:-3]}")
        ax.axvline(e["closed_loop_max_rps"], color="grey", linestyle=":", label="closed-loop maximum")
        ax.set_yscale("log")
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel("latency (µs)")
        ax.set_title(f"{name}: latency from the intended send time")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
