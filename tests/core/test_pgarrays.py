"""core.pgarrays packs lists byte for byte as psycopg does."""

from __future__ import annotations

from datetime import UTC

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.adapt import PyFormat, Transformer
from psycopg.types.array import ListBinaryDumper

from core.pgarrays import NumberListBinaryDumper


def dumped(dumper_class: type, values: list) -> bytes | None:
    adapters = psycopg.adapt.AdaptersMap(psycopg.adapters)
    adapters.register_dumper(list, dumper_class)
    transformer = Transformer(adapters)
    data = transformer.get_dumper(values, PyFormat.BINARY).dump(values)
    return None if data is None else bytes(data)


def same_as_psycopg(values: list) -> None:
    try:
        expected = dumped(ListBinaryDumper, values)
    except (psycopg.DataError, TypeError, ValueError, OverflowError) as error:
        try:
            dumped(NumberListBinaryDumper, values)
        except type(error):
            return
        raise AssertionError(f"psycopg refused {values!r}, the fast dumper did not") from None
    assert dumped(NumberListBinaryDumper, values) == expected


elements = st.one_of(
    st.integers(min_value=-(2**15), max_value=2**15),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=50))
def test_integer_lists(values):
    same_as_psycopg(values)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_float_lists(values):
    same_as_psycopg(values)


@settings(max_examples=400, deadline=None)
@given(st.lists(elements, max_size=12))
def test_mixed_lists_and_nulls(values):
    same_as_psycopg(values)


def test_other_lists_are_psycopgs():
    for values in ([True, False, True], [[1, 2], [3, 4]], ["a", "b"], [1, 2.5], [2**64], []):
        same_as_psycopg(values)
    assert dumped(NumberListBinaryDumper, [1, 2, 3]) == dumped(ListBinaryDumper, [1, 2, 3])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), max_size=20))
def test_text_lists(values):
    # Any code point, lone surrogates and NUL included: refused or written as psycopg does.
    same_as_psycopg(values)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(st.datetimes(timezones=st.just(UTC)), max_size=12),
        st.lists(st.datetimes(), max_size=12),  # naive: timestamp, not timestamptz
        st.lists(st.dates(), max_size=12),
        st.lists(st.decimals(allow_nan=False), max_size=12),
        st.lists(st.binary(), max_size=12),
    )
)
def test_lists_of_other_types(values):
    same_as_psycopg(values)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(max_size=5), st.none(), st.datetimes(), st.lists(st.text(), max_size=2)),
        max_size=8,
    )
)
def test_lists_mixing_types_nulls_and_lists(values):
    same_as_psycopg(values)


def test_a_text_list_is_written_by_the_fast_path():
    values = ["a", "é", "", "x" * 300]
    fast = dumped(NumberListBinaryDumper, values)
    assert fast == dumped(ListBinaryDumper, values)
    assert fast is not None and fast[8:12] == (25).to_bytes(4, "big")  # element type text
