"""``idnode bench --targets`` (``make bench``): every row of the targets table, each read off its own runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import suite
from tests.cli.conftest import IDNODE

DEADLINE = 240.0          # a safety net against a hung run, not a timing


def scenario(rps: float, busy: float) -> dict:
    return {"throughput_rps": rps, "node": {"busy": busy}}


def test_the_workers_scale_and_memory_rows_are_ratios_of_their_runs():
    runs = {
        "small": {"hs-udp-hot": scenario(100_000, 1.0), "hs-tcp-hot": scenario(50_000, 1.0)},
        "workers": {"hs-udp-hot": scenario(95_000, 1.0), "hs-tcp-hot": {"failed": "boom"}},
        "scale-from": {"size": 10_000, "hs-udp-hot": scenario(100_000, 1.0), "hs-udp-cold": scenario(40_000, 1.0)},
        "scale-to": {"size": 10_000_000, "hs-udp-hot": scenario(99_000, 1.0), "hs-udp-cold": scenario(30_000, 1.0)},
    }
    mem = {"small": {"entries": 1000, "beyond_answer": 120.0, "rss_per_entry": 300.0, "answer_per_entry": 180.0}}
    got = {figure: (measured, target, met) for figure, measured, target, met in suite.rows(runs, mem)}
    udp_workers = got["HS-UDP hot, CPU per 1k requests, `--workers 2` against `--workers 1`"]
    assert udp_workers[0].startswith(f"{100_000 / 95_000:.2f}") and udp_workers[2] is True
    assert not any(f.startswith("HS-TCP hot, CPU") for f in got)            # a failed run gives no row
    hot = got["hs-udp-hot, CPU per request, 10,000,000 against 10,000 identifiers"]
    assert hot == (f"{100_000 / 99_000:.2f}", "<= 1.10", True)
    cold = got["hs-udp-cold, throughput, 10,000,000 against 10,000 identifiers"]
    assert cold[0].startswith("0.75") and cold[2] is False
    assert got["RSS per cached identifier beyond its answer, small records (1,000 entries)"][1:] == ("<= 150 B", True)


def test_targets_runs_every_step_and_writes_one_table(tmp_path):
    proc = subprocess.run([str(IDNODE), "bench", "--targets", "--quick", "--size", "300", "--duration", "0.2",
                           "--warmup", "0.1", "--scale-to", "3000", "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=DEADLINE,
                          env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = next(tmp_path.glob("*-targets.md")).read_text()
    for step in suite.plan(300, 2_000, 3_000):
        assert f"- {step.label}: " in table
    assert "(small records)" in table and "(large records)" in table
    assert "RSS per cached identifier beyond its answer, small records" in table
    assert "RSS per cached identifier beyond its answer, large records" in table
    assert "3,000 against 2,000 identifiers" in table
    assert len(list(tmp_path.glob("*-w2-summary.md"))) == 1 and len(list(tmp_path.glob("*-summary.md"))) == 5


def test_targets_takes_no_scenario_words(tmp_path):
    proc = subprocess.run([str(IDNODE), "bench", "--targets", "hs-udp-hot"], capture_output=True, text=True,
                          env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)})
    assert proc.returncode == 2 and "--targets runs its own scenarios" in proc.stderr
