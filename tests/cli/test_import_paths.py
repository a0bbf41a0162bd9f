"""The import's quick paths give what the plain ones give, bad input included."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings, strategies as st

from registry.importer import _csv_fields, _CsvLines

# Lines rich in what CSV cares about: commas, quotes, line breaks, NUL, spaces.
line_text = st.text(st.one_of(st.sampled_from(list(',"\r\n\0 ;a')), st.characters()), max_size=30)


def plain(text: str):
    try:
        return _csv_fields(text)
    except csv.Error as exc:
        return ("error", str(exc))


def quick(split, text: str):
    try:
        return split(text)
    except csv.Error as exc:
        return ("error", str(exc))


@settings(max_examples=400, deadline=None)
@given(st.lists(line_text, max_size=10))
def test_csv_lines_split_as_a_reader_per_line_does(texts):
    split = _CsvLines().fields                  # one for the whole run: no line may leak into the next
    assert [quick(split, t) for t in texts] == [plain(t) for t in texts]


@pytest.mark.parametrize("texts", [
    ['a,"b', 'c,d'],                            # an unterminated quote, then a good line
    ['"a""b",c', 'x"y,z', '', 'a,b\r', 'a\0b', '"a\nb",c', '  ,  '],
])
def test_csv_lines_known_cases(texts):
    split = _CsvLines().fields
    assert [quick(split, t) for t in texts] == [plain(t) for t in texts]


def test_csv_lines_keep_the_field_size_limit():
    old = csv.field_size_limit(8)
    try:
        split = _CsvLines().fields
        for text in ["a" * 8, "a" * 9, "a," + "b" * 9, '"' + "a" * 9 + '"']:
            assert quick(split, text) == plain(text)
    finally:
        csv.field_size_limit(old)


def test_bulk_gc_puts_the_collector_back():
    import gc
    from registry.importer import bulk_gc
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with bulk_gc(12_345):
        assert gc.get_threshold()[0] == 12_345 and gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


# ---------------------------------------------------------------- whole files: quick path and plain path

import io          # noqa: E402
import json        # noqa: E402
import sqlite3     # noqa: E402
import types       # noqa: E402

from registry import errors as reg                                      # noqa: E402
from registry.importer import LineSource, Rejected, Row, parse_csv, parse_jsonl   # noqa: E402

MIXED = "\n".join([
    "handle,url,EMAIL,DESC",
    "88.118.8/a,https://e.x/a,a@e.x,plain",
    '88.118.8/b,https://e.x/b,,"with, a comma and ""quotes"""',
    "  88.118.8/c  ,  https://e.x/c  ,  c@e.x  ,  ",
    '88.118.8/d,"https://e.x/d,unterminated',
    "88.118.8/e,https://e.x/e",
    "no-slash,https://e.x/f,,",
    "88.118.99/g,https://e.x/g,,",
    "",
    "   ",
    "88.118.8/A,https://e.x/dup-of-a,,",
    "88.118.8/h,https://e.x/h,,nul\0inside",
    "88.118.8/i,https://e.x/i,,cr\rinside",
    "88.118.8/e\u0301,https://e.x/accent,,",
    "88.118.8/j,,,",
    "88.118.8/k,https://e.x/k,x\"y,z",
    "88.118.8/l,https://e.x/l,," + "w" * 70_000,
    "88.118.8/m,https://e.x/m,m@e.x,last",
]).encode() + b"\n88.118.8/\xff,https://e.x/bad,,\n88.118.8/n,https://e.x/n,,\n"


def parsed(data: bytes, split=None) -> list:
    return list(parse_csv(LineSource(io.BytesIO(data)), _split=split))


def test_a_mixed_file_parses_as_with_a_reader_per_line():
    quick, plain = parsed(MIXED), parsed(MIXED, _csv_fields)
    assert quick == plain
    assert [r.parsed.text for r in quick if isinstance(r, Row)] == [r.handle for r in plain if isinstance(r, Row)]
    assert sum(isinstance(r, Rejected) for r in quick) >= 6


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(line_text, min_size=1, max_size=4).map(",".join), max_size=8))
def test_any_file_parses_as_with_a_reader_per_line(body):
    data = ("handle,url,EMAIL\n" + "\n".join(body)).encode("utf-8", "surrogatepass")
    assert parsed(data) == parsed(data, _csv_fields)


def stored(home, keys_under: str) -> tuple[list, list]:
    with sqlite3.connect(home / "registry.sqlite3") as conn:
        rows = conn.execute("SELECT key, handle, prefix_key, vals, updated FROM handles "
                            "WHERE key > ? AND key < ? AND key != ? ORDER BY key",
                            (keys_under + "/", keys_under + "0", keys_under + "/admin")).fetchall()
        audit = conn.execute("SELECT at, actor, operation, handle, before_digest, after_digest FROM audit "
                             "WHERE operation LIKE 'handle.%' AND handle LIKE ? AND handle NOT LIKE ? ORDER BY seq",
                             (keys_under + "/%", keys_under + "/ADMIN")).fetchall()
    return rows, audit


def admin(handle: str) -> dict:
    return {"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {
        "handle": handle, "index": 300, "permissions": "111111111111"}}}


JSONL = "\n".join([
    '{"handle": "88.118.8/s1", "values": [{"index": 1, "type": "URL", "data": "https://e.x/1"}, %s]}'
    % json.dumps(admin("88.118.8/ADMIN")),
    '{"handle": "88.118.8/s2", "url": "https://e.x/2"}',
    '{"handle": "88.118.8/s3", "values": [{"index": 2, "type": "EMAIL", "data": "a@e.x", "ttl": 60, '
    '"timestamp": "2024-01-02T03:04:05Z", "permissions": "1110"}, {"index": 1, "type": "URL", "data": "u"}]}',
    '{"handle": "88.118.8/s4", "values": [{"index": 1, "type": "URL", "data": "a"}, '
    '{"index": 1, "type": "URL", "data": "b"}]}',
    '{"handle": "88.118.99/s5", "url": "https://e.x/5"}',
    'not json',
    '{"handle": "88.118.8/S1", "url": "https://e.x/dup"}',
    '{"handle": "88.118.8/s6", "url": "https://e.x/6", "extra": 1}',
    '{"handle": "88.118.8/s7", "values": [{"index": 3, "type": "DESC", "data": "r", '
    '"references": [{"handle": "88.118.8/s1", "index": 1}]}]}',
    '{"handle": "bad", "url": "https://e.x/8"}',
    '{"handle": "88.118.8/s9", "values": []}',
]).encode() + b"\n"


@pytest.mark.parametrize("name,data,plain_parse", [
    ("mixed.csv", MIXED, lambda data: parsed(data, _csv_fields)),
    ("small.jsonl", JSONL, lambda data: list(parse_jsonl(LineSource(io.BytesIO(data))))),
])
def test_import_stores_what_one_write_per_row_stores(node, tmp_path, monkeypatch, name, data, plain_parse):
    """The batch path (parse, operations layer, one transaction per batch)
    against the plain one: the per-line parser, then put_handle row by row."""
    import registry.sqlite
    monkeypatch.setattr(registry.sqlite, "time", types.SimpleNamespace(time=lambda: 1_700_000_000.25))
    src, report = tmp_path / name, tmp_path / "report.txt"
    src.write_bytes(data)
    node("import", src, "--batch-size", "3", "--report", report)

    from tests.cli.conftest import ENT_PASSWORD, Idnode
    plain = Idnode(tmp_path / "plain")
    plain.ok("init")
    plain.ok("prefix", "create", "88.118.8", "--owner", "Acme", "--password-stdin", input=ENT_PASSWORD + "\n")
    expected = []

    async def one_by_one(store):
        for entry in plain_parse(data):
            if isinstance(entry, Rejected):
                expected.append(str(entry))
                continue
            try:
                await store.put_handle(entry.handle, entry.values, mode="create", actor="cli")
            except reg.HandleExists:
                pass                                        # skipped, as the import counts it
            except reg.RegistryError as exc:
                expected.append(str(Rejected(entry.line, entry.handle, str(exc))))

    plain.with_store(one_by_one)
    assert stored(node.home, "88.118.8") == stored(plain.home, "88.118.8")
    assert len(stored(node.home, "88.118.8")[0]) >= 4       # something was written
    assert len(expected) >= 5                               # and something refused
    assert sorted(report.read_text().splitlines(), key=lambda s: int(s.split()[1].rstrip(":"))) == expected


header_names = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
                        .filter(lambda n: n.strip() and n.strip().lower() not in ("handle", "url")
                                and "," not in n and '"' not in n and "\n" not in n and "\r" not in n),
                        max_size=4)


@settings(max_examples=150, deadline=None)
@given(header_names, st.lists(st.lists(line_text, min_size=1, max_size=6).map(",".join), max_size=6))
def test_rows_the_parsers_pass_without_asking_pass_validate_values(names, body):
    """CSV rows skip validate_values once the header's columns pass it, JSONL
    rows once values_from_json has run it: nothing they let through fails it."""
    from protocol.values import validate_values
    data = (",".join(["handle", "url", *names]) + "\n" + "\n".join(body)).encode("utf-8", "surrogatepass")
    try:
        entries = parsed(data)
    except Exception:
        return                                  # a header the importer refuses
    jsonl = "\n".join(['{"handle": "88.118.8/j", "values": [{"index": 2, "type": "A", "data": "x"}, '
                       '{"index": 2, "type": "B", "data": "y"}]}',
                       '{"handle": "88.118.8/k", "values": [{"index": 3, "type": "A", "data": "x"}, '
                       '{"index": 1, "type": "B", "data": "y", "ttl": 5}]}'])
    entries += list(parse_jsonl(LineSource(io.BytesIO(jsonl.encode()))))
    for entry in entries:
        if isinstance(entry, Row):
            validate_values(entry.values)
    assert any(isinstance(e, Rejected) and "duplicate value index 2" in e.reason for e in entries)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(-2, 4), st.booleans(), st.floats(allow_nan=True), st.none(), st.text(max_size=1)),
                max_size=5))
def test_check_new_values_answers_as_value_by_value(indexes):
    from protocol.values import HandleValue
    from resolver.core.errors import Refused
    from resolver.core.writes import check_new_values

    def outcome(check, values):
        try:
            check(values)
            return "ok"
        except Refused as exc:
            return (exc.code, exc.message)
        except Exception as exc:
            return type(exc)

    def one_by_one(values):
        seen = set()
        for v in values:
            if v.index <= 0:
                raise Refused(1, "value indexes must be positive")
            if v.index in seen:
                raise Refused(2, f"index conflict for {v.index}")
            seen.add(v.index)

    values = [HandleValue(i, "T") for i in indexes]
    mine = outcome(check_new_values, values)
    plain = outcome(one_by_one, values)
    assert (mine if mine in ("ok",) or not isinstance(mine, tuple) else mine[1]) == \
        (plain if plain in ("ok",) or not isinstance(plain, tuple) else plain[1])
    assert outcome(check_new_values, tuple(values)) == mine
