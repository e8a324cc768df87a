"""JSON text for jsonb columns and back, with orjson where it gives exactly what the
standard library gives, and the standard library where it might not.

orjson writes and reads JSON about five to ten times faster than `json`; hot paths
(ingestion's payloads, derivation's reads and writes) spend a measurable share of their
time there. It differs from `json` in three ways that matter, each handled here:

- it refuses to write an integer beyond 64 bits, a lone surrogate or a non-string key
  (`json` writes all three): `dumps_text` falls back to `json` for those;
- it writes NaN and infinities as `null` where `json` writes `NaN`, which PostgreSQL
  refuses: callers store only finite floats (validation and derivation see to it);
- it reads an integer beyond 64 bits as a float, silently: `loads_text` reads again with
  `json` any value holding a float at or beyond 2**63 in size (where such integers land;
  a float literal that large reads the same either way), and anything orjson refuses (a
  lone surrogate escape, a number too large for a float) as well. Looking through the
  value read cost 0.03 us a stored payload, searching its text for 19-digit runs 12 us.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# orjson reads integers in [-2**63, 2**64) as integers; any other becomes a float out here.
_INT64 = float(2**63)


def dumps_text(value: Any) -> str:
    """`value` as compact JSON text (UTF-8 characters as they are)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads_text(text: str) -> Any:
    """The value of JSON `text`, exactly as `json.loads` gives it."""
    value = loads_exact(text)
    return json.loads(text) if value is INEXACT else value


# What `loads_exact` gives where orjson's value might not be `json`'s.
INEXACT: Any = object()


def loads_exact(data: str | bytes) -> Any:
    """The value of JSON `data` as orjson reads it, where that is exactly what `json.loads`
    gives (with or without a `parse_int` that leaves integers of up to 64 bits as they
    are); INEXACT where orjson refuses `data` or may have read an integer as a float:
    then the caller reads it with `json`, for the value or `json`'s own error."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return INEXACT
    return INEXACT if _holds_huge_float(value) else value


def _holds_huge_float(value: Any) -> bool:
    """Whether `value` (as orjson reads JSON) holds a float of 2**63 or more in size, or
    NaN: where an integer too large for 64 bits may have been read as a float. Walked with
    a stack of its own, so no nesting is too deep for it."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float and not -_INT64 < item < _INT64:
            return True
    return False
