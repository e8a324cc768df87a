"""Faster binary arrays for psycopg (PostgreSQL).

psycopg writes a Python list as a binary array element by element, in Python: about a
microsecond each. Derivation and review routing send every column of a chunk as one array
(`feedback.derive_io.binding_cursor`), thousands of ids, counts, scores and texts a chunk.
Byte for byte what psycopg writes (tests/core/test_pgarrays.py):

- numpy packs a flat list of numbers or booleans without NULLs in one step;
- a flat list of other values of one type without NULLs (texts, dates) is written by
  psycopg's own element dumper, with the loop in C (`map`, `zip`, `bytes.join`) rather than
  in Python: about three times faster.

Anything else (NULLs, nested lists, mixed types) goes through psycopg's own dumper.
"""

from __future__ import annotations

import struct
from itertools import chain
from typing import Any

import numpy as np
from psycopg.types.array import ListBinaryDumper

# Element type oid -> (numpy type, numpy kind the list must have on its own).
_ELEMENTS: dict[int, tuple[str, str]] = {
    16: ("?", "b"),  # bool
    20: (">i8", "i"),  # int8
    21: (">i2", "i"),  # int2
    23: (">i4", "i"),  # int4
    701: (">f8", "f"),  # float8
}
# An array's header: dimensions, has-nulls flag, element oid; then the dimension's length
# and lower bound.
_HEAD = np.dtype(
    [("ndim", ">i4"), ("hasnull", ">i4"), ("oid", ">u4"), ("length", ">i4"), ("lower", ">i4")]
)

_HEAD_STRUCT = struct.Struct(">iiIii")
_LENGTH = struct.Struct(">i")
_TEXT_OID = 25


class NumberListBinaryDumper(ListBinaryDumper):
    """psycopg's ListBinaryDumper, with flat lists of numbers or booleans packed by numpy."""

    def dump(self, obj: list[Any]) -> Any:
        sub = self.sub_dumper
        element = _ELEMENTS.get(sub.oid) if sub is not None else None
        if sub is not None and element is not None and obj:
            kind, expected = element
            values = np.array(obj)  # as numpy reads the list itself: no silent casts
            if values.ndim == 1 and values.dtype.kind == expected:
                try:
                    typed = values.astype(kind, casting="same_kind")
                except TypeError:
                    typed = None
                if typed is not None and np.array_equal(typed, values, equal_nan=expected == "f"):
                    packed = np.empty(len(typed), dtype=[("length", ">i4"), ("value", kind)])
                    packed["length"] = typed.dtype.itemsize
                    packed["value"] = typed
                    head = np.array([(1, 0, sub.oid, len(typed), 1)], dtype=_HEAD)
                    return head.tobytes() + packed.tobytes()
        if sub is not None and obj:
            types = set(map(type, obj))
            if len(types) == 1 and not issubclass(types.pop(), (list, type(None))):
                items: list[Any] = list(map(sub.dump, obj))
                if None not in items:  # as psycopg: an element dumped as None is a NULL
                    oid = sub.oid or _TEXT_OID  # as psycopg: no array of unknown
                    lengths = map(_LENGTH.pack, map(len, items))
                    body = b"".join(chain.from_iterable(zip(lengths, items, strict=True)))
                    return _HEAD_STRUCT.pack(1, 0, oid, len(items), 1) + body
        return super().dump(obj)


def register(cursor: Any) -> None:
    """Use NumberListBinaryDumper for lists sent in binary on this psycopg cursor."""
    cursor.adapters.register_dumper(list, NumberListBinaryDumper)
