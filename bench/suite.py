"""``make bench`` (``idnode bench --targets``): every row of the resolution
path's targets (issue 11), each beside the ceiling it is read against.

One suite is a few ordinary runs of :func:`bench.runner.run`, each with its
own results, ceilings and summary, and the memory measure:

- **small**: one-datagram records, N identifiers: the hot, cold and open
  loop HS-UDP, HS-TCP and REST scenarios and the import;
- **large**: multi-datagram records, N identifiers: the hot scenarios and
  the import;
- **workers**: small records, a node of two workers: the hot HS scenarios,
  read against the small run's CPU per 1k requests;
- **scale**: small records at ``scale_from`` and at ``scale_to`` identifiers
  (10k and 10M): HS-UDP hot and cold, read against each other;
- **memory**: :mod:`bench.cachemem` for small and large records, each in a
  fresh process so its resident memory is its own.

Then ``<date>-targets.md``: the rows of :func:`bench.targets.rows` for the
small and large runs, and the workers, scale and memory rows of
:func:`rows` here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from . import targets
from .runner import Options, run
from .scenarios import select

MEMORY_TARGET = 150             # bytes of RSS per cached identifier beyond its answer
WITHIN = 0.10                   # the workers and scale rows: within 10%


@dataclass(frozen=True, slots=True)
class Step:
    label: str
    records: str
    scenarios: tuple[str, ...]
    size: int | None = None     # None: the suite's N
    workers: int = 1


def plan(size: int, scale_from: int, scale_to: int) -> list[Step]:
    hot = ("hs-udp-hot", "hs-tcp-hot", "rest-hot")
    return [Step("small", "small", hot + ("hs-udp-cold", "hs-tcp-cold", "rest-cold", "hs-udp-hot-open", "import")),
            Step("large", "large", hot + ("import",)),
            Step("workers", "small", ("hs-udp-hot", "hs-tcp-hot"), workers=2),
            Step("scale-from", "small", ("hs-udp-hot", "hs-udp-cold"), size=scale_from),
            Step("scale-to", "small", ("hs-udp-hot", "hs-udp-cold"), size=scale_to)]


def memory(entries: int, records: str) -> dict:
    """:func:`bench.cachemem.measure` in a fresh interpreter."""
    code = ("import json, sys; from bench.cachemem import measure; "
            f"print(json.dumps(measure({entries}, False, {records!r})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cpu_per_1k(e: dict | None) -> float | None:
    if not e or e.get("skipped") or e.get("failed"):
        return None
    per_core = targets.per_core(e)
    return 1000.0 / per_core if per_core else None


def rows(runs: dict[str, dict], mem: dict[str, dict]) -> Iterator[tuple[str, str, str, bool]]:
    """The workers, scale and memory rows: ``(figure, measured, target, met)``."""
    for name, label in (("hs-udp-hot", "HS-UDP"), ("hs-tcp-hot", "HS-TCP")):
        one = _cpu_per_1k(runs.get("small", {}).get(name))
        two = _cpu_per_1k(runs.get("workers", {}).get(name))
        if one and two:
            yield (f"{label} hot, CPU per 1k requests, `--workers 2` against `--workers 1`",
                   f"{two / one:.2f} ({two * 1000:.1f} vs {one * 1000:.1f} ms)", f"<= {1 + WITHIN:.2f}",
                   two / one <= 1 + WITHIN)
    low, high = runs.get("scale-from", {}), runs.get("scale-to", {})
    for name in ("hs-udp-hot", "hs-udp-cold"):
        a, b = _cpu_per_1k(low.get(name)), _cpu_per_1k(high.get(name))
        if a and b:
            sizes = f"{high['size']:,} against {low['size']:,} identifiers"
            yield (f"{name}, CPU per request, {sizes}", f"{b / a:.2f}", f"<= {1 + WITHIN:.2f}", b / a <= 1 + WITHIN)
            ra, rb = low[name]["throughput_rps"], high[name]["throughput_rps"]
            yield (f"{name}, throughput, {sizes}", f"{rb / ra:.2f} ({rb:,.0f} vs {ra:,.0f}/s)",
                   f">= {1 - WITHIN:.2f}", rb / ra >= 1 - WITHIN)
    for kind, m in mem.items():
        yield (f"RSS per cached identifier beyond its answer, {kind} records ({m['entries']:,} entries)",
               f"{m['beyond_answer']:,.0f} B ({m['rss_per_entry']:,.0f} B in all, answer {m['answer_per_entry']:,.0f} B)",
               f"<= {MEMORY_TARGET} B", m["beyond_answer"] <= MEMORY_TARGET)


def markdown(runs: dict[str, dict], mem: dict[str, dict], stamp: str) -> str:
    lines = [f"# idnode bench targets {stamp}", "",
             "Every figure is a ratio of figures from the same run (see each run's summary for its ceilings).", ""]
    for label, summary in runs.items():
        lines.append(f"- {label}: {summary['size']:,} identifiers, {summary['records']} records, "
                     f"{summary['workers']} worker(s): {summary['summary']}")
    table = []
    for label in ("small", "large"):
        if label in runs:
            for figure, measured, target, met in targets.rows(runs[label]["results"], runs[label]["records"],
                                                              runs[label]["ceilings"]):
                table.append([f"{figure} ({label} records)", measured, target, met])
    table += [list(r) for r in rows({k: {**v["results"], "size": v["size"]} for k, v in runs.items()}, mem)]
    lines += ["", "| figure | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {f} | {m} | {t} | {'yes' if ok else 'no'} |" for f, m, t, ok in table]
    return "\n".join(lines) + "\n"


def run_suite(opts: Options, *, scale_from: int, scale_to: int, memory_entries: int,
              say: Callable[[str], None] = print) -> dict:
    """Run every step of :func:`plan`, the memory measure, and write the targets table."""
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    runs: dict[str, dict] = {}
    for step in plan(opts.size, scale_from, scale_to):
        size = step.size or opts.size
        say(f"== targets: {step.label} ({size:,} {step.records} records, {step.workers} worker(s))")
        summary = run(replace(opts, records=step.records, size=size, workers=step.workers),
                      select(step.scenarios), say=say)
        runs[step.label] = {**summary, "size": size, "workers": step.workers}
    mem = {}
    for kind in ("small", "large"):
        say(f"== targets: memory ({memory_entries:,} cached {kind} records)")
        mem[kind] = memory(memory_entries, kind)
    text = markdown(runs, mem, stamp)
    out = Path(opts.output) / f"{stamp}-targets.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    say("")
    say(text)
    say(f"written: {out}")
    return {"runs": runs, "memory": mem, "summary": str(out)}
