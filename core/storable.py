"""What the database can hold: checks every entry point (ingestion, review, exports) runs
before any write, so a value PostgreSQL (or Python) cannot take is a 4xx naming its field,
never a 500.

PostgreSQL refuses NUL (U+0000) in text and JSON, and a lone surrogate (U+D800..U+DFFF,
what `JSON.stringify` leaves of an emoji cut in half) cannot be encoded as UTF-8 at all;
integer columns hold 32 bits (`IntegerField`) or 64 (`BigAutoField` ids).
"""

from __future__ import annotations

import math
from typing import Any

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
ID_MAX = 2**63 - 1


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "Must not contain NUL characters (\\u0000)."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Must not contain unpaired surrogates (\\ud800-\\udfff), e.g. a cut emoji."
    return None


def check_text(field: str, text: str, max_length: int) -> None:
    """Raise ValueError ("<field>: <why>") when `text` is longer than `max_length` characters
    or cannot be stored (the services' way of refusing a note or a reason, by field)."""
    if len(text) > max_length:
        raise ValueError(f"{field}: must be at most {max_length} characters.")
    if problem := text_problem(text):
        raise ValueError(f"{field}: {problem[0].lower()}{problem[1:]}")


def printable(text: str, limit: int = 100) -> str:
    """`text` made safe to echo in an error (surrogates escaped, cut to `limit`)."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def json_problem(value: Any, *, max_depth: int, max_text: int) -> str | None:
    """Why the JSON value cannot be stored, or None: a bad text or key, a number that is
    not finite or beyond 64 bits, a text longer than `max_text` characters, or nesting
    deeper than `max_depth`. Walks without recursion, so any depth is answered."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if len(node) > max_text:
                return f"Texts must be at most {max_text} characters."
            if problem := text_problem(node):
                return problem
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not -ID_MAX - 1 <= node <= ID_MAX:
                return "Numbers must fit in 64 bits."
        elif isinstance(node, float):
            if not math.isfinite(node):
                return "Numbers must be finite (no NaN or Infinity)."
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                return f"Must be nested at most {max_depth} levels deep."
            if isinstance(node, dict):
                stack.extend((key, depth + 1) for key in node)  # keys are texts too
                stack.extend((child, depth + 1) for child in node.values())
            else:
                stack.extend((child, depth + 1) for child in node)
        else:
            return f"Unsupported value of type {type(node).__name__}."
    return None
