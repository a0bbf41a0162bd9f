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
