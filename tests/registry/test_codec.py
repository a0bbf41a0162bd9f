"""The stored form: the quick encoder writes exactly what cbor2 writes, whatever it is given."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings, strategies as st

from protocol.values import HandleValue, Reference
from registry import codec
from registry.codec import decode_values, encode_values, encode_values_cbor2

EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 0xFFFFFFFF, 0x100000000, 2**64, -1]
numbers = st.one_of(st.sampled_from(EDGES), st.integers(0, 0xFFFFFFFF), st.booleans())
odd = st.one_of(st.floats(allow_nan=False), st.just(None), st.text(max_size=3))
values = st.builds(
    HandleValue,
    index=st.one_of(numbers, odd),
    type=st.one_of(st.sampled_from(["URL", "EMAIL", "HS_ADMIN", "ÜRL", ""]), st.text(max_size=30),
                   st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)),
    data=st.one_of(st.binary(max_size=300), st.sampled_from([b"x" * 1023, b"x" * 1024, b"y" * 70000]),
                   st.builds(bytearray, st.binary(max_size=5))),
    ttl=st.one_of(numbers, odd),
    ttl_absolute=st.one_of(st.booleans(), st.sampled_from([0, 1, None])),
    timestamp=st.one_of(numbers, st.just(0)),
    permissions=st.one_of(numbers, st.sampled_from([14, 15, 0x10])),
    references=st.one_of(st.just(()), st.lists(st.builds(Reference, st.text(max_size=10), numbers),
                                                 max_size=2).map(tuple)),
)


def same(vals, now: int = 0) -> None:
    try:
        expected = encode_values_cbor2(vals, now)
    except Exception as exc:                    # what cbor2 refuses, the quick path refuses alike
        with pytest.raises(type(exc)):
            encode_values(vals, now)
        return
    assert encode_values(vals, now) == expected
    assert encode_values(iter(vals), now) == expected


@settings(max_examples=500, deadline=None)
@given(st.lists(values, max_size=8), st.one_of(st.sampled_from([0, 1_700_000_000, 2**32]), st.integers(0)))
def test_the_quick_encoder_writes_what_cbor2_writes(vals, now):
    same(vals, now)
    same(vals, now)                             # again, now from the kept pieces


def test_equal_but_not_identical_fields_are_not_confused():
    # 1 == True == 1.0 as keys of the kept pieces; the bytes must follow the real types.
    for first, second in [(1, True), (True, 1), (1, 1.0), (0, False)]:
        a = [HandleValue(first, "URL", b"a", ttl=first, timestamp=first, permissions=first)]
        b = [HandleValue(second, "URL", b"a", ttl=second, timestamp=second, permissions=second)]
        same(a, 5)
        same(b, 5)
        same(a, 5)


def test_many_values_and_a_full_cache(monkeypatch):
    monkeypatch.setattr(codec, "_MAX_PIECES", 3)
    vals = [HandleValue(i, f"T{i}", b"d" * i, timestamp=i) for i in range(1, 70)]
    same(vals, 9)
    same(vals, 9)
    assert len(codec._pieces) <= 3
    assert decode_values(encode_values(vals, 9)) == tuple(vals)


def test_stamps_and_round_trip():
    vals = [HandleValue(1, "URL", b"https://e.x", timestamp=0), HandleValue(2, "EMAIL", b"a@e.x", timestamp=7),
            HandleValue(3, "DESC", b"r", references=(Reference("88.118.8/x", 1),))]
    blob = encode_values(vals, 1_700_000_000)
    assert cbor2.loads(blob)[0][5] == 1_700_000_000 and cbor2.loads(blob)[1][5] == 7
    assert decode_values(blob)[0].timestamp == 1_700_000_000
    same(vals, 1_700_000_000)
