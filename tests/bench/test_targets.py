"""The targets table reads its ratios off the run's own results."""

from __future__ import annotations

import pytest

from bench import targets


def scenario(rps: float, busy: float, **extra) -> dict:
    return {"throughput_rps": rps, "node": {"busy": busy}, **extra}


def open_run(p99: float, ceiling_p99: float) -> dict:
    point = {"fraction": 0.5, "latency": {"p99_us": p99}}
    return {"points": [{"fraction": 0.25, "latency": {"p99_us": 1.0}}, point],
            "ceiling": {"open_points": [{"fraction": 0.5, "latency": {"p99_us": ceiling_p99}}]}}


def test_each_row_is_a_ratio_of_the_runs_own_figures():
    results = {
        "hs-udp-hot": scenario(90_000, 1.0, cpu_ratio=0.86),
        "hs-udp-cold": scenario(30_000, 0.75),                  # 40k per CPU-second against 90k
        "hs-tcp-hot": scenario(70_000, 1.0, cpu_ratio=0.6),
        "rest-hot": {"skipped": "not asked"},
        "rest-cold": scenario(5_000, 1.0),
        "hs-udp-hot-open": open_run(1300.0, 1000.0),
        "import": {"throughput_rps": 120_000.0, "ratio": 0.4},
    }
    got = {figure: (measured, target, met) for figure, measured, target, met in targets.rows(results, "small")}
    assert got["HS-UDP hot against its bare server, per core"] == ("0.86", ">= 0.85", True)
    assert got["HS-UDP cold (cache off) against hot, per core"][0] == f"{40_000 / 90_000:.2f}"
    assert got["HS-UDP cold (cache off) against hot, per core"][2] is False
    assert got["HS-TCP hot against its bare server, per core"] == ("0.60", ">= 0.90", False)
    assert not any(f.startswith("REST") for f in got)       # a skipped scenario gives no row
    assert not any("HS-TCP cold" in f for f in got)          # nor a missing one
    assert got["HS-UDP p99 at 50% of the maximum against the bare responder's at the same rate"] == (
        "1.30x", "<= 1.30x", True)
    assert got["`idnode import` into SQLite, rows/s"] == ("120,000 (0.40 of bare sqlite3)", ">= 100,000", True)


@pytest.mark.parametrize("records, target", [("large", ">= 0.90"), ("small", ">= 0.85"), ("mixed", ">= 0.85")])
def test_multi_datagram_answers_have_the_higher_udp_target(records, target):
    rows = list(targets.rows({"hs-udp-hot": scenario(1.0, 1.0, cpu_ratio=0.88)}, records))
    assert rows[0][2] == target and rows[0][3] is (records != "large")


def test_the_p99_row_takes_the_bare_responders_points_from_the_runs_ceilings():
    """As a run writes them: the open-loop points are on the ceiling, not on the scenario's own copy."""
    results = {"hs-udp-hot-open": {"points": [{"fraction": 0.5, "latency": {"p99_us": 120.0}}],
                                   "ceiling": {"name": "bare uvloop UDP responder", "p99_us": 1.0}}}
    ceilings = [{"name": "bare uvloop UDP responder", "for": ["hs-udp-hot", "hs-udp-hot-open"],
                 "open_points": [{"fraction": 0.5, "latency": {"p99_us": 100.0}}]}]
    got = list(targets.rows(results, "small", ceilings))
    assert got == [("HS-UDP p99 at 50% of the maximum against the bare responder's at the same rate", "1.20x",
                    "<= 1.30x", True)]
