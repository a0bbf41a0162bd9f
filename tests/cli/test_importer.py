"""registry.importer: pure CSV/JSONL parsing and batch commits into a real store."""

from __future__ import annotations

import io

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from protocol.values import HandleValue
from registry import provision
from tests.conftest import store_of
from registry.importer import (ImportFormatError, LineSource, Rejected, Row, guess_format, import_rows,
                               parse, parse_csv, parse_jsonl)
from resolver.settings import load_settings


def lines(text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return LineSource(io.BytesIO(data))


def split(entries):
    entries = list(entries)
    return [e for e in entries if isinstance(e, Row)], [e for e in entries if isinstance(e, Rejected)]


# ---------------------------------------------------------------- CSV

def test_csv_columns_become_values_in_order():
    rows, bad = split(parse_csv(lines(
        "\ufeffHandle,URL,EMAIL,DESC\r\n"
        "88.118.8/a,https://e.x/a,a@e.x,\"first, quoted \"\"item\"\"\"\r\n"
        "\n"
        "88.118.8/b,https://e.x/b,,\n")))
    assert bad == []
    assert [(r.line, r.handle) for r in rows] == [(2, "88.118.8/a"), (4, "88.118.8/b")]
    assert [(v.index, v.type, v.data) for v in rows[0].values] == [
        (1, "URL", b"https://e.x/a"), (2, "EMAIL", b"a@e.x"), (3, "DESC", b'first, quoted "item"')]
    assert [(v.index, v.type) for v in rows[1].values] == [(1, "URL")]     # empty cells add nothing


def test_csv_without_url_column_and_handle_not_first():
    rows, _ = split(parse_csv(lines("EMAIL,handle\nx@e.x,88.118.8/a\n")))
    assert rows[0].handle == "88.118.8/a"
    assert [(v.index, v.type, v.data) for v in rows[0].values] == [(2, "EMAIL", b"x@e.x")]


def test_csv_bad_rows_are_rejected_with_line_and_reason():
    text = (b"handle,url\n"
            b"88.118.8/ok,https://e.x\n"
            b"no-slash,https://e.x\n"
            b"88.118.8/c,https://e.x,extra\n"
            b"88.118.8/d,\"unterminated\n"
            b"88.118.8/\xff\xfe,https://e.x\n"
            b"88.118.8/e,\n"
            b"88.118.8/\x01,u\n")
    rows, bad = split(parse_csv(lines(text)))
    assert [r.handle for r in rows] == ["88.118.8/ok"]
    reasons = {r.line: r.reason for r in bad}
    assert set(reasons) == {3, 4, 5, 6, 7, 8}
    assert "no '/'" in reasons[3]
    assert "expected 2 columns, got 3" in reasons[4]
    assert "malformed CSV" in reasons[5]
    assert "UTF-8" in reasons[6]
    assert reasons[7] == "no values"
    assert "control" in reasons[8]
    assert str(bad[0]) == f"line 3: no-slash: {reasons[3]}"


@pytest.mark.parametrize("text,needle", [
    ("", "empty"),
    ("\n\n", "empty"),
    ("url,EMAIL\n88.118.8/a,x,y\n", "'handle'"),
    ("handle,url,url\n", "'url' twice"),
    ("handle,,EMAIL\n", "no empty names"),
    ('handle,"url\n', "malformed CSV header"),
])
def test_csv_bad_header_fails_the_whole_file(text, needle):
    with pytest.raises(ImportFormatError, match=needle):
        list(parse_csv(lines(text)))


def test_csv_header_not_utf8():
    with pytest.raises(ImportFormatError, match="UTF-8"):
        list(parse_csv(lines(b"hand\xffle,url\n")))


# ---------------------------------------------------------------- JSONL

def test_jsonl_url_and_values_forms():
    values = [{"index": 1, "type": "URL", "data": {"format": "string", "value": "https://e.x/b"}},
              {"index": 7, "type": "DESC", "data": "seven", "permissions": "1100"}]
    text = "\n".join([
        orjson.dumps({"handle": "88.118.8/a", "url": " https://e.x/a "}).decode(),
        "",
        orjson.dumps({"responseCode": 1, "handle": "88.118.8/b", "values": values[::-1]}).decode(),
    ])
    rows, bad = split(parse_jsonl(lines(text)))
    assert bad == []
    assert rows[0] == Row(1, "88.118.8/a", (HandleValue(1, "URL", b"https://e.x/a"),))
    assert rows[1].line == 3
    assert [(v.index, v.type, v.data, v.permissions) for v in rows[1].values] == [
        (1, "URL", b"https://e.x/b", 0b1110), (7, "DESC", b"seven", 0b1100)]


@pytest.mark.parametrize("line,needle", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"url": "x"}', "missing or non-text 'handle'"),
    ('{"handle": 5, "url": "x"}', "missing or non-text 'handle'"),
    ('{"handle": "88.118.8/a"}', "exactly one of"),
    ('{"handle": "88.118.8/a", "url": "x", "values": []}', "exactly one of"),
    ('{"handle": "88.118.8/a", "url": "x", "vals": 1}', "unknown keys: vals"),
    ('{"handle": "88.118.8/a", "url": ""}', "non-empty"),
    ('{"handle": "88.118.8/a", "values": {}}', "must be a list"),
    ('{"handle": "88.118.8/a", "values": []}', "no values"),
    ('{"handle": "88.118.8/a", "values": [{"index": 0, "type": "URL", "data": "x"}]}', "index"),
    ('{"handle": "88.118.8/a", "values": [{"index": 1, "type": "URL", "data": "x"},'
     ' {"index": 1, "type": "EMAIL", "data": "y"}]}', "duplicate value index 1"),
    ('{"handle": "nope", "url": "x"}', "no '/'"),
])
def test_jsonl_bad_lines_are_rejected(line, needle):
    rows, bad = split(parse_jsonl(lines(f'{{"handle": "88.118.8/ok", "url": "u"}}\n{line}\n')))
    assert len(rows) == 1 and len(bad) == 1
    assert bad[0].line == 2 and needle in bad[0].reason


def test_format_by_name():
    assert guess_format("x.CSV") == "csv"
    assert guess_format("dump.ndjson") == "jsonl"
    with pytest.raises(ImportFormatError, match="--format"):
        guess_format("data.txt")
    with pytest.raises(ImportFormatError, match="unknown format"):
        parse("xml", [])


def test_line_source_counts_bytes():
    source = lines(b"a\r\nbb\n\xff\n")
    assert list(source) == [(1, "a"), (2, "bb"), (3, None)]
    assert source.bytes_read == 8


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_any_bytes_after_a_header_give_rows_or_rejections(chunks):
    data = b"handle,url,EMAIL\n" + b"\n".join(chunks)
    for entry in parse_csv(lines(data)):
        assert isinstance(entry, (Row, Rejected))
    for entry in parse_jsonl(lines(b"\n".join(chunks))):
        assert isinstance(entry, (Row, Rejected))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=6))
def test_any_text_rows_give_rows_or_rejections(cells):
    import csv
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)
    data = ("handle,url\n" + buf.getvalue()).encode("utf-8", "surrogatepass")
    for entry in parse_csv(lines(data)):
        assert isinstance(entry, (Row, Rejected))


# ---------------------------------------------------------------- batches into a real store

@pytest.fixture
async def store(tmp_path):
    store = store_of(load_settings(env={}, overrides={"node.home": str(tmp_path / "home")}))
    await store.open()
    await provision.init_node(store, "88.118", None)
    await provision.create_prefix(store, "88.118.8", "Acme", actor="test")
    try:
        yield store
    finally:
        await store.close()


def row(line: int, suffix: str, url: str = "https://e.x") -> Row:
    return Row(line, f"88.118.8/{suffix}", (HandleValue(1, "URL", url.encode()),))


async def collect(store, entries, **kw):
    kw = {"batch_size": 2, "overwrite": False, **kw}

    async def register(items, overwrite):
        return await store.register_batch(items, overwrite=overwrite, actor="test")

    return [b async for b in import_rows(register, entries, **kw)]


async def test_batches_commit_and_report_per_line(store):
    entries = [row(2, "a"), Rejected(3, "x", "parse"), row(4, "b"), row(5, "c"),
               Row(6, "88.118.9/d", (HandleValue(1, "URL", b"u"),)), row(7, "A")]
    out = await collect(store, entries)
    assert [(b.number, b.first_line, b.last_line, b.imported, b.skipped) for b in out] == [
        (1, 2, 4, 2, 0), (2, 5, 6, 1, 0), (3, 7, 7, 0, 1)]   # 88.118.8/A exists as /a
    assert [r.line for r in out[0].rejected] == [3]
    assert [(r.line, r.handle) for r in out[1].rejected] == [(6, "88.118.9/d")]
    assert "not allocated" in out[1].rejected[0].reason
    for suffix in "abc":
        assert (await store.get_handle(f"88.118.8/{suffix}")).values[0].data == b"https://e.x"


async def test_rerun_skips_existing_and_overwrite_replaces(store):
    await collect(store, [row(2, "a"), row(3, "b")])
    out = await collect(store, [row(2, "a", "https://new"), row(3, "b", "https://new")])
    assert (out[0].imported, out[0].skipped, out[0].rejected) == (0, 2, ())
    assert (await store.get_handle("88.118.8/a")).values[0].data == b"https://e.x"
    out = await collect(store, [row(2, "a", "https://new")], overwrite=True)
    assert (out[0].imported, out[0].skipped) == (1, 0)
    assert (await store.get_handle("88.118.8/a")).values[0].data == b"https://new"


@pytest.mark.parametrize("batch_size", [1, 2])
async def test_duplicates_count_the_same_wherever_the_batches_fall(store, batch_size):
    out = await collect(store, [row(2, "dup", "https://one"), row(3, "DUP", "https://two")],
                        batch_size=batch_size)
    assert (sum(b.imported for b in out), sum(b.skipped for b in out)) == (1, 1)
    assert (await store.get_handle("88.118.8/dup")).values[0].data == b"https://one"
    out = await collect(store, [row(2, "dup", "https://three"), row(3, "DUP", "https://four")],
                        batch_size=batch_size, overwrite=True)
    assert sum(b.imported for b in out) == 2
    assert (await store.get_handle("88.118.8/dup")).values[0].data == b"https://four"


async def test_disabled_prefix_rows_are_rejected_not_skipped(store):
    await store.set_prefix_state("88.118.8", "disabled", actor="test")
    out = await collect(store, [row(2, "a")])
    assert out[0].imported == 0 and out[0].rejected[0].reason == "prefix 88.118.8 is disabled"


async def test_batch_size_must_be_positive(store):
    with pytest.raises(ValueError):
        await collect(store, [row(2, "a")], batch_size=0)
