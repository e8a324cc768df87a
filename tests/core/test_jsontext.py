"""core.jsontext: orjson's speed, the standard library's results."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.jsontext import dumps_text, loads_text

# What a stored payload can hold, including what validation now refuses but older rows
# may have: integers beyond 64 bits, non-finite floats, lone surrogates.
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**400, 9_999_999_999_999_999_999])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "a\udfffb", "😀", "1234567890123456789012"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)


def typed(value: Any) -> Any:
    """`value` with every number tagged by its type (1, 1.0 and True compare equal)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


@settings(max_examples=500, deadline=None)
@given(values, st.booleans())
def test_loads_text_reads_what_json_loads_reads(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert typed(loads_text(text)) == typed(json.loads(text))


def test_loads_text_keeps_integers_beyond_64_bits():
    # orjson alone would read these as floats.
    assert loads_text("18446744073709551616") == 2**64
    assert isinstance(loads_text('{"n": 18446744073709551616}')["n"], int)
    assert loads_text("[-9223372036854775809]") == [-(2**63) - 1]
    assert loads_text("1e400") == float("inf")  # orjson refuses; json reads infinity
    assert loads_text('"\\ud800"') == "\ud800"


@settings(max_examples=500, deadline=None)
@given(values)
def test_dumps_text_writes_what_json_reads_back_the_same(value):
    text = dumps_text(value)
    finite = "NaN" not in json.dumps(value) and "Infinity" not in json.dumps(value)
    if finite:
        assert typed(json.loads(text)) == typed(json.loads(json.dumps(value)))
    assert ", " not in text or ", " in json.dumps(value, separators=(",", ":"))


def test_dumps_text_falls_back_where_orjson_refuses():
    assert dumps_text({1: 2**70}) == '{"1":1180591620717411303424}'
    assert dumps_text(["\ud800"]) == '["\ud800"]'
    assert dumps_text({"é": 1.5}) == '{"é":1.5}'


def test_loads_text_finds_a_huge_integer_anywhere_in_the_value():
    deep = '{"a": [1, {"b": [2.5, "x", {"c": 36893488147419103232}]}]}'
    assert loads_text(deep)["a"][1]["b"][2]["c"] == 2**65
    assert isinstance(loads_text(deep)["a"][1]["b"][2]["c"], int)
    # Long runs of digits in text, and large floats written as floats, read as json reads them.
    assert loads_text('"12345678901234567890123"') == "12345678901234567890123"
    assert loads_text("[1e19, -1.5e300, 0.12345678901234567890123]") == json.loads(
        "[1e19, -1.5e300, 0.12345678901234567890123]"
    )
