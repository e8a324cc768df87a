"""The cache's copy of a kept read (review/kept.py, `_Shared`) gives back the very arrays:
values and types, whatever their range."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from review import kept
from review.gate import ITEM_TABLE

INTEGERS = st.sampled_from([np.int64, np.int32, np.int16, np.uint64, np.uint32, np.dtype(">i8")])


@settings(max_examples=200, deadline=None)
@given(
    columns=st.lists(
        INTEGERS.flatmap(lambda dtype: hnp.arrays(dtype, st.integers(0, 40))), min_size=1
    ),
    times=hnp.arrays(np.float64, st.integers(0, 40)),
)
def test_a_copy_gives_back_every_column_as_it_was(columns, times):
    rows = (columns[0], [*columns[1:], times])
    read = kept._Kept(("sig", 1), 123, rows)
    shared = kept._Shared.of(read)
    back = shared.kept()
    assert (back.signature, back.watermark) == (("sig", 1), 123)
    for before, after in zip([rows[0], *rows[1]], [back.rows[0], *back.rows[1]], strict=True):
        assert after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)


def test_small_values_travel_in_small_types_and_the_item_table_as_it_is():
    ids = np.arange(1_000_000, 1_000_100, dtype=np.int64)
    codes = np.array([-1, 0, 3] * 10, dtype=np.int64)
    table = np.zeros(4, dtype=ITEM_TABLE)
    shared = kept._Shared.of(kept._Kept("s", 1, (ids, [codes, table])))
    assert [column.dtype.itemsize for column, _ in shared.columns] == [4, 1, ITEM_TABLE.itemsize]
    back = shared.kept()
    assert back.rows[1][1].dtype == ITEM_TABLE
