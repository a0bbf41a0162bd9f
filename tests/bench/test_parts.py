"""The harness's pieces: records, key sets, wire bytes, reply framing, selection, summaries."""

from __future__ import annotations

import os
import struct
from array import array
from collections import Counter

import orjson
import pytest

from bench import procstat, records, report, scenarios, stats, wire
from bench.gen_stream import hs_frame, http_frame
from protocol.codes import RC
from protocol.handle import (ResolutionRequest, ResolutionResponse, decode, encode, make_reply, make_request,
                             split_datagrams)
from protocol.identifier import parse_handle
from protocol.jsoncodec import values_from_json
from protocol.valuetypes import ALL_ADMIN_PERMS, AdminRef
from registry.importer import parse_jsonl


def test_records_have_4_to_8_values_of_300_to_600_bytes_under_the_enterprise_prefixes():
    prefixes = {p for p, _ in records.ENTERPRISES}
    seen = set()
    for i in range(3000):
        values = records.record_values(i)
        assert 4 <= len(values) <= 8
        assert [v.index for v in values] == list(range(1, len(values) + 1))
        assert 300 <= records.payload_bytes(i) <= 600
        h = parse_handle(records.handle_of(i))
        assert h.prefix in prefixes and h.prefix.startswith(records.SECONDARY_PREFIX + ".")
        seen.add(h.key)
    assert len(seen) == 3000
    assert not {parse_handle(records.missing_handle(j)).key for j in range(3000)} & seen


def test_import_rows_match_the_records():
    rows = list(records.csv_rows(5))
    assert rows[0][:2] == ["handle", "url"] and len(rows) == 6
    for i, row in enumerate(rows[1:]):
        cols = records.record_columns(i)
        assert row[0] == records.handle_of(i) and row[1] == cols["URL"]
        assert sum(1 for c in row[1:] if c) == len(cols)


def test_key_sets():
    hot = records.hot_keys(5000, 100)
    assert len(hot.handles) == hot.distinct == 100 and hot.found
    cold = records.cold_keys(500, 1000)
    assert sorted(cold.handles) == sorted(records.handle_of(i) for i in range(500))
    assert records.cold_keys(5000, 1000).distinct < 1000 + 1
    missing = records.missing_keys(50)
    assert not missing.found and len(set(missing.handles)) == 50
    zipf = records.zipf_keys(10_000, 20_000)
    counts = Counter(zipf.handles).most_common()
    assert counts[0][1] > 20 * counts[len(counts) // 2][1]      # heavy head, long tail
    assert zipf.distinct == len(counts) < 10_000


def test_hs_requests_decode_to_resolutions_and_take_a_patched_request_id():
    handles = ["88.118.8/SN-1", "88.118.20450/LOT-00000042", "88.118.3/x"]
    for h, raw in zip(handles, wire.hs_requests(handles)):
        buf = bytearray(raw)
        struct.pack_into(">I", buf, wire.REQUEST_ID_AT, 0xDEADBEEF)
        msg = decode(bytes(buf))
        assert msg.body == ResolutionRequest(h) and msg.request_id == 0xDEADBEEF


@pytest.mark.parametrize("size", [200, 492, 700, 1500])
def test_ceiling_replies_have_the_asked_size_and_packets(size):
    reply = wire.hs_reply(size)
    assert len(reply) == size
    assert decode(reply).response_code == RC.SUCCESS
    packets = wire.hs_datagrams(reply)
    assert len(packets) == wire.packets_for(size - 20)
    assert all(len(p) <= 512 for p in packets)
    missing = wire.hs_reply(120, found=False)
    assert len(missing) == 120 and decode(missing).response_code == RC.HANDLE_NOT_FOUND


def test_hs_framing_waits_for_the_whole_message():
    a, b = wire.hs_reply(300), wire.hs_reply(90, found=False)
    stream = bytearray(a + b)
    for cut in range(len(a)):
        assert hs_frame(bytearray(a[:cut])) is None
    assert hs_frame(stream) == (RC.SUCCESS, len(a), len(a))
    del stream[:len(a)]
    assert hs_frame(stream) == (RC.HANDLE_NOT_FOUND, len(b), len(b))


def test_http_framing_reads_status_and_content_length():
    one = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nabcde"
    two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    for cut in range(len(one)):
        assert http_frame(bytearray(one[:cut])) is None
    assert http_frame(bytearray(one + two)) == (404, len(one), 5)
    assert http_frame(bytearray(two)) == (200, len(two), 2)


def test_http_requests_are_keep_alive_requests():
    get = wire.rest_gets(["88.118.8/A B"], "127.0.0.1:1")[0]
    assert get.startswith(b"GET /api/handles/88.118.8/A%20B HTTP/1.1\r\nHost: 127.0.0.1:1\r\n")
    assert get.endswith(b"\r\n\r\n") and b"Connection: close" not in get
    post = wire.cbor_resolves(["88.118.8/a", "88.118.8/b", "88.118.8/c"], "h", 2)
    assert len(post) == 1 and b"Content-Type: application/cbor" in post[0]
    head, body = post[0].split(b"\r\n\r\n", 1)
    assert f"Content-Length: {len(body)}".encode() in head


def test_scenario_words_select_by_name_or_tag():
    assert [s.name for s in scenarios.select(["rest-cold"])] == ["rest-cold"]
    hot = scenarios.select(["hot"])
    assert {s.name for s in hot} == {"hs-udp-hot", "hs-tcp-hot", "rest-hot", "cbor-hot", "hs-udp-hot-open",
                                      "hs-tcp-hot-open", "rest-hot-open"}
    assert len(scenarios.select([])) == len(scenarios.SCENARIOS)
    assert all(not s.cache for s in scenarios.select(["cold"]))
    with pytest.raises(scenarios.UnknownScenario):
        scenarios.select(["warm"])


def test_latency_summary():
    ns = array("q", [i * 1000 for i in range(1, 1001)])          # 1..1000 µs
    lat = stats.summarise([ns[:500].tobytes(), ns[500:].tobytes()])
    assert (lat.count, lat.p50, lat.p90, lat.p99, lat.p999, lat.max) == (1000, 501, 901, 991, 1000, 1000)
    assert stats.summarise([]) == stats.EMPTY


def test_flags_say_when_the_server_was_not_the_limit_or_the_run_was_disturbed():
    quiet = {"mode": "closed", "node": {"busy": 0.97}, "errors": {"total": 0}, "other_processes_busy": 0.0}
    assert report.flags(quiet) == []
    idle = {**quiet, "node": {"busy": 0.6}, "generator_busy": 0.99}
    assert "limited by something else" in report.flags(idle)[0]
    noisy = {**quiet, "other_processes_busy": 0.4, "attempts": 3}
    assert "disturbed" in report.flags(noisy)[0]
    assert report.flags({**quiet, "errors": {"total": 3}}) == ["3 errors"]


def test_process_costs_are_read_from_proc():
    assert procstat.rss_bytes(os.getpid()) > 0
    assert procstat.cpu_seconds(os.getpid()) > 0
    assert procstat.system_busy_seconds() > 0
    plan = procstat.cpu_plan()
    assert plan.server and plan.load and (not plan.pinned or not plan.server & plan.load)


def test_cache_memory_measure_fills_realistic_entries():
    from bench.cachemem import measure
    r = measure(300, rest=True)
    assert r["entries"] == 300 and r["rest"] is True
    assert 300 <= r["payload_per_record"] <= 600 and 4 <= r["values_per_record"] <= 8
    assert r["estimate_per_entry"] > r["payload_per_record"]


# ------------------------------------------------------------------ --records small|mixed|large

def _datagrams(i: int, kind: str) -> int:
    h = records.handle_of(i)
    request = make_request(ResolutionRequest(h), request_id=7, now=0)
    reply = encode(make_reply(request, ResolutionResponse(h, tuple(records.record_values(i, kind))), now=0))
    packets = split_datagrams(reply)
    assert all(len(p) <= 512 for p in packets)
    return len(packets)


def test_small_records_are_a_url_and_an_hs_admin_and_their_reply_is_one_datagram():
    for i in range(0, 5000, 7):
        url, admin = records.record_values(i, "small")
        assert (url.index, url.type, url.data) == (1, "URL", records.record_columns(i)["URL"].encode())
        prefix = records.handle_of(i).split("/", 1)[0]
        assert (admin.index, admin.type) == (100, "HS_ADMIN")
        assert admin.data == AdminRef(f"{prefix}/ADMIN", 300).encode()
        assert AdminRef.decode(admin.data).permissions == ALL_ADMIN_PERMS
        assert _datagrams(i, "small") == 1


def test_large_records_are_todays_and_most_replies_take_two_datagrams():
    assert all(records.record_values(i) == records.record_values(i, "large") for i in range(200))
    counts = Counter(_datagrams(i, "large") for i in range(1000))
    assert counts[2] > 900 and set(counts) <= {1, 2}


def test_mixed_records_are_a_deterministic_70_30_mix():
    small = [records.is_small(i, "mixed") for i in range(20_000)]
    assert small == [records.is_small(i, "mixed") for i in range(20_000)]
    assert 0.67 < sum(small) / len(small) < 0.73
    for i in range(300):
        kind = "small" if small[i] else "large"
        assert records.record_values(i, "mixed") == records.record_values(i, kind)
    with pytest.raises(ValueError):
        records.is_small(0, "medium")


def test_small_records_travel_through_import_jsonl_and_rest_bodies_with_their_hs_admin():
    lines = [(n, line.decode()) for n, line in enumerate(records.jsonl_lines(40, "mixed"), 1)]
    rows = list(parse_jsonl(lines))
    assert [r.handle for r in rows] == [records.handle_of(i) for i in range(40)]
    for i, row in enumerate(rows):
        assert [(v.index, v.type, v.data) for v in row.values] == \
            [(v.index, v.type, v.data) for v in records.record_values(i, "mixed")]
    pairs = [(records.handle_of(i), records.record_values(i, "small")) for i in range(3)]
    put = wire.rest_puts(pairs, "h", ("Authorization", "Basic x"))[0]
    sent = values_from_json(orjson.loads(put.split(b"\r\n\r\n", 1)[1]))
    assert [(v.index, v.type, v.data) for v in sent] == [(v.index, v.type, v.data) for v in pairs[0][1]]
    large = wire.rest_puts([(records.handle_of(0), records.record_values(0))], "h", ("A", "b"))[0]
    assert b'"format":"string"' in large and b'"format":"admin"' not in large


def test_ceiling_replies_for_small_and_mixed_records_match_the_records():
    small = wire.hs_record_replies("small", 20)
    assert all(len(wire.hs_datagrams(r)) == 1 and decode(r).response_code == RC.SUCCESS for r in small)
    mixed = [len(wire.hs_datagrams(r)) for r in wire.hs_record_replies("mixed")]
    assert mixed == [_datagrams(i, "mixed") for i in range(100)]


def test_runs_of_each_kind_of_records_write_files_of_their_own():
    assert report.file_prefix("2026-01-01-000000", "large") == "2026-01-01-000000"
    assert report.file_prefix("2026-01-01-000000", "small") == "2026-01-01-000000-small"
    assert report.file_prefix("2026-01-01-000000", "small", 2) == "2026-01-01-000000-small-w2"
    assert report.file_prefix("2026-01-01-000000", "large", 2) == "2026-01-01-000000-w2"
    assert report.file_prefix("2026-01-01-000000", "small", 1, "cluster") == "2026-01-01-000000-small-cluster"
