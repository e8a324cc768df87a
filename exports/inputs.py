"""Checks of raw input that no database or Python type could hold, before any parsing:
each finds the first bad value and names where it is, so the client gets a 4xx naming
the field instead of a 500 from the database (DESIGN.md, "Exports")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.storable import text_problem

MAX_DEPTH = 20  # an export body is at most three levels deep (body, filters, a list)


def field_name(key: object) -> str:
    """A key fit to be echoed in an error (a bad key is shown escaped and cut short)."""
    text = str(key)
    if text_problem(text) is not None or len(text) > 64:
        return ascii(text[:64])
    return text


def body_problems(data: Any) -> dict[str, str]:
    """The first value of a parsed body that cannot be stored, as {dotted path: reason};
    empty when every key and string is storable. Walks without recursion, so a body
    nested beyond MAX_DEPTH is refused instead of exhausting the stack."""
    if hasattr(data, "lists"):  # a QueryDict: every value of every key
        data = dict(data.lists())
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        name = path or "body"
        if depth > MAX_DEPTH:
            return {name: f"Nested too deeply (more than {MAX_DEPTH} levels)."}
        if isinstance(value, str):
            if reason := text_problem(value):
                return {name: reason}
        elif isinstance(value, Mapping):
            for key, item in value.items():
                label = field_name(key)
                if isinstance(key, str) and (reason := text_problem(key)):
                    return {f"{path}.{label}" if path else label: f"Key: {reason}"}
                stack.append((f"{path}.{label}" if path else label, item, depth + 1))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                stack.append((f"{name}[{index}]", item, depth + 1))
    return {}
