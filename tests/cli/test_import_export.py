"""`idnode import` and `idnode export` in-process: reports, re-runs and the round trip."""

from __future__ import annotations

import orjson
import pytest

from .conftest import Idnode, assert_error

CSV = (b"handle,url,EMAIL\n"
       b"88.118.8/a,https://e.x/a,a@e.x\n"
       b"88.118.8/b,https://e.x/b,\n"
       b"no-slash,https://e.x/c,\n"
       b"88.118.99/d,https://e.x/d,\n"
       b"88.118.8/e,https://e.x/e\n"
       b"88.118.8/\xff,https://e.x/f,\n"
       b"88.118.8/A,https://e.x/dup,\n")


def summary(result) -> tuple[int, int, int]:
    last = result.stdout.strip().splitlines()[-1]
    words = last.replace(",", "").split()
    assert words[0::2] == ["imported", "skipped", "rejected"], last
    return int(words[1]), int(words[3]), int(words[5])


def test_csv_import_reports_bad_rows_and_reruns_skip(node, tmp_path):
    src, report = tmp_path / "items.csv", tmp_path / "report.txt"
    src.write_bytes(CSV)
    first = node("import", src, "--report", report, "--batch-size", "3")
    assert summary(first) == (2, 1, 4)            # 88.118.8/A: an earlier batch wrote 88.118.8/a
    assert_error(first, "4 rows rejected")
    lines = report.read_text().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["line 4", "line 5", "line 6", "line 7"]
    assert "no '/'" in lines[0] and "88.118.99 is not allocated" in lines[1]
    assert "expected 3 columns, got 2" in lines[2] and "UTF-8" in lines[3]
    assert node.ok("resolve", "88.118.8/a").stdout.splitlines() == ["1 URL https://e.x/a", "2 EMAIL a@e.x"]

    again = node("import", src)                    # no --report: rejections go to stderr
    assert summary(again) == (0, 3, 4)
    rejected = [ln for ln in again.stderr.splitlines() if ln.startswith("idnode: rejected line ")]
    assert len(rejected) == 4 and again.stderr.strip().splitlines()[-1].startswith("idnode: error: ")


def test_jsonl_import_with_progress_lines(node, tmp_path):
    src = tmp_path / "items.jsonl"
    src.write_text("\n".join([
        '{"handle": "88.118.8/j1", "url": "https://e.x/1"}',
        '{"handle": "88.118.8/j2", "values": [{"index": 5, "type": "DESC", "data": "five"}]}',
        '{"handle": "88.118.8/j3"}',
        '{"handle": "88.118.8/j4", "url": "https://e.x/4"}',
    ]) + "\n")
    result = node("import", src, "--batch-size", "2", "--progress", "lines")
    assert summary(result) == (3, 0, 1)
    acks = [ln for ln in result.stderr.splitlines() if " committed: " in ln]
    assert acks == ["idnode: batch 1 committed: lines 1-2, imported 2, skipped 0, rejected 0",
                    "idnode: batch 2 committed: lines 3-4, imported 1, skipped 0, rejected 1"]
    assert node.ok("resolve", "88.118.8/j2").stdout.splitlines() == ["5 DESC five"]
    src.write_text('{"handle": "88.118.8/j1", "url": "https://e.x/new"}\n')
    assert summary(node.ok("import", src)) == (0, 1, 0)
    assert summary(node.ok("import", src, "--overwrite", "--format", "jsonl")) == (1, 0, 0)
    assert node.ok("resolve", "88.118.8/j1").stdout.splitlines() == ["1 URL https://e.x/new"]


def test_import_progress_bar_goes_to_stderr(node, tmp_path):
    src = tmp_path / "bar.csv"
    src.write_text("handle,url\n88.118.8/bar,https://e.x/bar\nbad,x\n")
    result = node("import", src, "--progress", "bar")
    assert summary(result) == (1, 0, 1) and result.exit_code == 1
    assert "import: 100%" in result.stderr and "idnode: rejected line 3: bad:" in result.stderr
    assert "100%" not in result.stdout


def test_import_from_stdin_needs_a_format(node):
    assert_error(node("import", "-", input='{"handle": "88.118.8/s", "url": "u"}\n'), "give --format")
    result = node("import", "-", "--format", "jsonl", input='{"handle": "88.118.8/s", "url": "https://s"}\n')
    assert result.exit_code == 0 and summary(result) == (1, 0, 0)


@pytest.mark.parametrize("name,content,args,needle", [
    ("missing.csv", None, [], "No such file or directory"),
    ("data.txt", b"handle,url\n", [], "cannot tell the format"),
    ("noheader.csv", b"88.118.8/a,https://e.x\n", [], "CSV header must be"),
    ("empty.csv", b"", [], "the file is empty"),
])
def test_import_file_errors_are_one_line(node, tmp_path, name, content, args, needle):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert_error(node("import", path, *args), needle)


def test_export_import_round_trip(node, tmp_path):
    node.ok("register", "88.118.8/r1", "--url", "https://e.x/1", "--value", "EMAIL=x@e.x")
    src = tmp_path / "values.jsonl"
    src.write_text(orjson.dumps({"handle": "88.118.8/r2", "values": [
        {"index": 1, "type": "URL", "data": "https://e.x/2", "permissions": "1110"},
        {"index": 2, "type": "HS_ADMIN", "data": {"format": "admin", "value": {
            "handle": "88.118.8/ADMIN", "index": 300, "permissions": "011111111111"}}},
        {"index": 3, "type": "INTERNAL", "data": {"format": "base64", "value": "AAEC/w=="}, "permissions": "1100",
         "ttl": 60},
    ]}).decode() + "\n")
    node.ok("import", src)
    exported = node.ok("export", "--prefix", "88.118.8").stdout
    assert "exported 3 identifiers" in node.ok("export", "--prefix", "88.118.8", "-o", tmp_path / "o").stderr
    records = [orjson.loads(line) for line in exported.splitlines()]
    assert [r["handle"] for r in records] == ["88.118.8/ADMIN", "88.118.8/r1", "88.118.8/r2"]
    assert all(v["type"] != "HS_SECKEY" for r in records for v in r["values"])

    other = Idnode(tmp_path / "other")
    other.ok("init")
    other.ok("prefix", "create", "88.118.8", "--owner", "Acme")
    dump = tmp_path / "dump.jsonl"
    dump.write_text(exported)
    assert summary(other.ok("import", dump)) == (2, 1, 0)              # the ADMIN handle exists there
    again = orjson.loads(other.ok("export", "--prefix", "88.118.8").stdout.splitlines()[2])
    assert again == records[2]                                      # timestamps and all
    assert other.ok("resolve", "88.118.8/r1").stdout == node.ok("resolve", "88.118.8/r1").stdout


def test_export_unknown_prefix(node):
    assert_error(node("export", "--prefix", "88.118.7"), "prefix 88.118.7 is not allocated")
