"""Identifier parsing: NFC, length, prefix segments, ASCII case folding."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, strategies as st

from protocol.identifier import InvalidHandle, handle_key, parse_handle, parse_prefix


def test_parse_and_key():
    h = parse_handle("88.118.8/PO-2026-000123")
    assert (h.prefix, h.suffix, h.text) == ("88.118.8", "PO-2026-000123", "88.118.8/PO-2026-000123")
    assert h.key == "88.118.8/po-2026-000123"
    assert parse_handle("0.NA/88.118").key == "0.na/88.118"
    assert parse_handle("88.118.8/a/b/c").suffix == "a/b/c"      # only the first '/' separates


def test_nfc_and_non_ascii_case_kept():
    decomposed = "88.118.8/Cafe\u0301"
    h = parse_handle(decomposed)
    assert h.text == unicodedata.normalize("NFC", decomposed)
    assert handle_key("88.118.8/ÄB") == "88.118.8/Äb"               # only ASCII letters fold


@pytest.mark.parametrize("bad", ["", "noslash", "/suffix", "88.118.8/", "88..8/x", ".88/x", "88./x",
                                 "88.118.8/a\nb", "88 1/x", "88.118.8/" + "x" * 247, b"\xff/x"])
def test_invalid(bad):
    with pytest.raises(InvalidHandle):
        parse_handle(bad)


def test_length_limit_is_in_bytes():
    assert parse_handle("8/" + "x" * 253).text
    with pytest.raises(InvalidHandle, match="255"):
        parse_handle("8/" + "é" * 127)


def test_prefix():
    assert parse_prefix(" 88.118.8 ") == "88.118.8"
    for bad in ["", "88/1", "88..1", "a b"]:
        with pytest.raises(InvalidHandle):
            parse_prefix(bad)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_fuzz_parse_raises_only_invalid_handle(raw):
    try:
        h = parse_handle(raw)
    except InvalidHandle:
        return
    assert len(h.text.encode()) <= 255 and h.prefix and h.suffix
    assert parse_handle(h.text) == h
