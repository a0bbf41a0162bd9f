"""`idnode bench` end to end at a tiny size: the shape of what it writes, never its speed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import IDNODE

SCENARIOS = ["hs-udp-hot", "hs-tcp-notfound", "hs-udp-hot-open", "rest-hot", "rest-notfound", "cbor-cold",
             "register-single", "register-batch", "import"]
PERCENTILES = ["p50_us", "p90_us", "p99_us", "p99.9_us"]
DEADLINE = 120.0          # a safety net against a hung run, not a timing


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("bench-results")
    proc = subprocess.run([str(IDNODE), "bench", *SCENARIOS, "--quick", "--size", "300", "--duration", "1",
                           "--warmup", "0.1", "--output", str(out)],
                          capture_output=True, text=True, timeout=DEADLINE,
                          env={"PATH": str(Path(sys.executable).parent), "HOME": str(out)})
    return proc, out


def _result(out: Path, name: str) -> dict:
    files = list(out.glob(f"*-{name}.json"))
    assert len(files) == 1, (name, sorted(p.name for p in out.iterdir()))
    return json.loads(files[0].read_text())


def _hs_skipped(entry: dict) -> bool:
    return entry["scenario"].startswith("hs-") and "skipped" in entry


def test_the_run_succeeds_and_says_where_it_ran(run):
    proc, _ = run
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cores:" in proc.stdout
    assert "| scenario |" in proc.stdout and "## Ceilings" in proc.stdout


@pytest.mark.parametrize("name", ["hs-udp-hot", "hs-tcp-notfound", "rest-hot", "rest-notfound", "cbor-cold",
                                  "register-single", "register-batch"])
def test_a_closed_loop_result_has_every_figure_and_its_ceiling(run, name):
    proc, out = run
    e = _result(out, name)
    assert e["scenario"] == name and e["context"]["machine"]["python"]
    assert e["records"] == "large" and not any("-large-" in p.name or "-small-" in p.name for p in out.iterdir())
    if _hs_skipped(e):
        assert "HS servers not available" in e["skipped"]
        return
    assert "failed" not in e, e.get("failed")
    assert e["mode"] == "closed" and e["requests"] > 0 and e["throughput_rps"] > 0
    lat = e["latency"]
    values = [lat[p] for p in PERCENTILES]
    assert all(v > 0 for v in values) and values == sorted(values)
    quantiles = [q for q, _ in lat["cdf"]]
    assert quantiles == sorted(quantiles) and quantiles[-1] == 1.0
    assert e["errors"]["total"] == 0, e["errors"]
    node = e["node"]
    assert node["cpu_s_per_1k"] > 0 and node["rss_mb"] > 0 and 0 < node["busy"]
    ceiling = e["ceiling"]
    assert ceiling["kind"] == ("udp" if name.startswith("hs-udp") else "tcp" if name.startswith("hs-tcp") else "http")
    assert ceiling["throughput_rps"] > 0
    assert e["ratio"] == pytest.approx(e["throughput_rps"] / ceiling["throughput_rps"], rel=1e-2)
    per_core = (e["throughput_rps"] / node["busy"]) / (ceiling["throughput_rps"] / ceiling["server_busy"])
    assert e["cpu_ratio"] == pytest.approx(per_core, rel=1e-2)          # requests per CPU-second, against the ceiling's
    assert isinstance(e["flags"], list)


def test_batches_count_identifiers_as_well_as_requests(run):
    _, out = run
    for name in ("cbor-cold", "register-batch"):
        e = _result(out, name)
        assert e["items_per_request"] > 1
        assert e["items_per_second"] == pytest.approx(e["throughput_rps"] * e["items_per_request"], rel=1e-3)


def test_open_loop_reports_latency_at_each_offered_rate(run):
    _, out = run
    e = _result(out, "hs-udp-hot-open")
    if _hs_skipped(e):
        return
    assert e["mode"] == "open" and e["closed_loop_max_rps"] > 0
    assert [p["fraction"] for p in e["points"]] == [0.25, 0.5, 0.9]
    offered = [p["offered_rps"] for p in e["points"]]
    assert offered == sorted(offered)
    for p in e["points"]:
        assert p["offered_rps"] == pytest.approx(e["closed_loop_max_rps"] * p["fraction"], rel=1e-2)
        assert set(PERCENTILES) <= set(p["latency"])


def test_import_is_measured_against_bare_sqlite(run):
    _, out = run
    e = _result(out, "import")
    assert e["rows"] == 300 and e["throughput_rps"] > 0 and e["seconds"] > 0
    assert e["ceiling"]["kind"] == "sqlite" and e["ratio"] > 0
    assert "imported 300, skipped 0, rejected 0" in e["summary"]


def test_ceilings_summary_and_plots_are_written(run):
    _, out = run
    ceilings = json.loads(next(out.glob("*-ceilings.json")).read_text())["ceilings"]
    kinds = {c["kind"] for c in ceilings}
    assert {"http", "sqlite"} <= kinds
    for c in ceilings:
        if c["kind"] in ("udp", "tcp", "http"):
            assert c["reply_bytes"] > 0 and c["throughput_rps"] > 0 and c["for"]
    summary = next(out.glob("*-summary.md")).read_text()
    for name in SCENARIOS:
        assert f"| {name} |" in summary
    assert "## Targets of the resolution path" in summary and "| `idnode import` into SQLite, rows/s |" in summary
    if importlib.util.find_spec("matplotlib"):
        pngs = sorted(p.name for p in out.glob("*.png"))
        assert any(p.endswith("latency-cdf.png") for p in pngs), pngs
        assert any(p.endswith("latency-vs-load.png") for p in pngs) or _hs_skipped(_result(out, "hs-udp-hot-open"))
        assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def _bench_hs_udp_hot(out: Path, *options: str) -> None:
    """A quick ``idnode bench hs-udp-hot`` of 100 identifiers into ``out``, which must succeed."""
    proc = subprocess.run([str(IDNODE), "bench", "hs-udp-hot", "--quick", "--size", "100", "--warmup", "0.1",
                           *options, "--output", str(out)],
                          capture_output=True, text=True, timeout=DEADLINE,
                          env={"PATH": str(Path(sys.executable).parent), "HOME": str(out)})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_small_records_run_and_are_named_and_recorded_as_such(tmp_path):
    """``--records small``: seeded small, the HS ceiling answers like the node, files say ``small``."""
    _bench_hs_udp_hot(tmp_path, "--records", "small", "--duration", "0.2")
    e = _result(tmp_path, "small-hs-udp-hot")
    assert e["records"] == "small" and e["context"]["options"]["records"] == "small"
    assert "small records" in next(tmp_path.glob("*-small-summary.md")).read_text()
    if _hs_skipped(e):
        return
    assert "failed" not in e and e["errors"]["total"] == 0
    assert e["ceiling_reply_bytes"] <= 512 and e["ceiling"]["kind"] == "udp"
    ceilings = json.loads(next(tmp_path.glob("*-small-ceilings.json")).read_text())
    assert ceilings["records"] == "small"
    udp = next(c for c in ceilings["ceilings"] if c["kind"] == "udp")
    assert udp["shape"] == "small records" and abs(udp["ceiling_reply_bytes"] - e["ceiling_reply_bytes"]) < 16


def test_a_node_of_two_workers_is_measured_as_one(tmp_path):
    """``--workers 2``: the node runs two workers (both on the node's core), its
    CPU is the whole process tree's, and the files say ``w2``."""
    _bench_hs_udp_hot(tmp_path, "--workers", "2", "--duration", "0.3")
    e = _result(tmp_path, "w2-hs-udp-hot")
    assert e["context"]["options"]["workers"] == 2
    assert "node workers: 2" in next(tmp_path.glob("*-w2-summary.md")).read_text()
    if _hs_skipped(e):
        return
    assert "failed" not in e and e["errors"]["total"] == 0 and e["requests"] > 0
    assert e["node"]["cpu_s_per_1k"] > 0


def test_a_mixed_load_over_two_instances_on_redis(tmp_path):
    """``mixed-two --store redis``: the harness's own redis-server, a second
    instance beside the node, both loaded at once; the entry sums the two,
    beside redis-benchmark's GET and SET from the same run."""
    proc = subprocess.run([str(IDNODE), "bench", "mixed-two", "--store", "redis", "--quick", "--size", "300",
                           "--duration", "0.5", "--warmup", "0.1", "--records", "small", "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=DEADLINE,
                          env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    e = _result(tmp_path, "small-redis-mixed-two")
    assert "failed" not in e, e.get("failed")
    a, b = e["instances"]
    assert a["requests"] > 0 and b["requests"] > 0 and e["requests"] == a["requests"] + b["requests"]
    assert e["errors"]["total"] == 0 and e["write_share"] == 0.1
    ceilings = json.loads(next(tmp_path.glob("*-small-redis-ceilings.json")).read_text())["ceilings"]
    assert {c["name"] for c in ceilings} >= {"redis-server GET (redis-benchmark)", "redis-server SET (redis-benchmark)"}
