"""JSON text for jsonb columns and back, with orjson where it gives exactly what the
standard library gives, and the standard library where it might not.

orjson writes and reads JSON about five to ten times faster than `json`; hot paths
(ingestion's payloads, derivation's reads and writes) spend a measurable share of their
time there. It differs from `json` in three ways that matter, each handled here:

- it refuses to write an integer beyond 64 bits, a lone surrogate or a non-string key
  (`json` writes all three): `dumps_text` falls back to `json` for those;
- it writes NaN and infinities as `null` where `json` writes `NaN`, which PostgreSQL
  refuses: callers store only finite floats (validation and derivation see to it);
- it reads an integer beyond 64 bits as a float, silently: `loads_text` hands any text
  holding a run of 19 or more digits to `json`, and anything orjson refuses (a lone
  surrogate escape, a number too large for a float) as well.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# 19 digits in a row: where an integer may no longer fit in 64 bits (2**63 has 19).
_LONG_DIGITS = re.compile(r"\d{19}")


def dumps_text(value: Any) -> str:
    """`value` as compact JSON text (UTF-8 characters as they are)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads_text(text: str) -> Any:
    """The value of JSON `text`, exactly as `json.loads` gives it."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
