"""The ingestion body is read by orjson where it reads exactly as `json` does, and by `json`
(with `_parse_int`) everywhere else: same values, same errors (feedback.event_schema)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback.event_schema import TOO_DEEP, BodyInvalid, _parse_int, loads_batch


def _as_json_reads(body: bytes) -> object:
    """What the body read before orjson: `json` with `_parse_int`."""
    return json.loads(body, parse_int=_parse_int)


def _same(a: object, b: object) -> bool:
    """Equal, with types, NaN equal to NaN and -0.0 apart from 0.0 (repr tells them)."""
    return repr(a) == repr(b) and type(a) is type(b)


_numbers = st.one_of(
    st.integers(),  # 64 bits and far beyond
    st.integers(min_value=-(2**64), max_value=2**65),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**25, -(10**25)]),
)
_texts = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))
_values = st.recursive(
    st.none() | st.booleans() | _numbers | _texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=_values, ascii_only=st.booleans())
def test_a_body_reads_as_json_reads_it(value: object, ascii_only: bool) -> None:
    body = json.dumps({"events": [value]}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = _as_json_reads(body)
    except ValueError as error:  # a lone surrogate written raw is not UTF-8
        with pytest.raises(BodyInvalid) as refused:
            loads_batch(body)
        assert str(error) in refused.value.message
        return
    assert _same(loads_batch(body), expected)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Integers beyond 64 bits: orjson would give floats.
        (b'{"n": 123456789012345678901234}', {"n": math.inf}),  # over 20 characters
        (b'{"n": 18446744073709551616}', {"n": 18446744073709551616}),
        (b'{"n": -9223372036854775809}', {"n": -9223372036854775809}),
        (b'{"n": 18446744073709551615}', {"n": 18446744073709551615}),
        # What orjson refuses and json takes.
        (b'{"n": NaN, "m": -Infinity}', {"n": math.nan, "m": -math.inf}),
        (b'{"n": 1e400}', {"n": math.inf}),
        (b'{"t": "\\ud800"}', {"t": "\ud800"}),
        (b"\xef\xbb\xbf" + b'{"a": 1}', {"a": 1}),
        ('{"a": "é"}'.encode("utf-16"), {"a": "é"}),
        # Read alike by both.
        (b'{"a": 1, "a": 2, "f": -0.0, "z": -0}', {"a": 2, "f": -0.0, "z": 0}),
    ],
)
def test_values_orjson_would_read_otherwise_read_as_json_reads_them(
    body: bytes, expected: object
) -> None:
    assert _same(loads_batch(body), expected)
    assert _same(loads_batch(body), _as_json_reads(body))


@pytest.mark.parametrize(
    "body", [b'{"events": [1, 2}', b'{"a": "\x01"}', b'{"a": "\xff"}', b"", b"[1] x"]
)
def test_bad_bodies_are_refused_with_json_s_own_message(body: bytes) -> None:
    with pytest.raises(ValueError) as error:
        _as_json_reads(body)
    with pytest.raises(BodyInvalid) as refused:
        loads_batch(body)
    assert refused.value.field == "body"
    assert str(error.value) in refused.value.message


def test_nesting_past_orjson_s_limit_reads_as_before() -> None:
    # 1,100 levels: past orjson's 1,024, within what json reads (so the value is whole).
    deep = b"[" * 1100 + b"]" * 1100
    body = b'{"events": [{"id": "e", "metadata": ' + deep + b"}]}"
    assert _same(loads_batch(body), _as_json_reads(body))
    # Past json's reach too: only that field is cut, the rest of the batch is kept.
    deeper = b"[" * 100_000 + b"]" * 100_000
    body = b'{"events": [{"id": "e", "metadata": ' + deeper + b'}, {"id": "f"}]}'
    events = loads_batch(body)["events"]
    assert events == [{"id": "e", "metadata": TOO_DEEP}, {"id": "f"}]
