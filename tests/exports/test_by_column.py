"""The by-column path of exports/chunks.py gives the very bytes and values of the row loop
it stands in for, on the chunks it takes, and leaves the others to the loop."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from exports import chunks
from exports.chunks import RowWeight
from feedback.models import Label

TEXTS = [
    "".join(chr(code) for code in range(0x21)),
    '\x7f " \\ / \u2028 \u2029 é 日本 🙂 \ufeff \U0010ffff',
    "",
    "plain",
    "The report says revenue grew four percent. " * 12,
]
MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
PAIR = Label.Kind.PREFERENCE_PAIR.value
# (format, style, bare): the chunks the by-column path takes.
TAKEN = [
    ("dpo", "standard", False),
    ("dpo", "conversational", False),
    ("openai_preference", "standard", True),
    ("openai_preference", "standard", False),
]


def _rows(fmt: str, style: str, *, lone: bool = True) -> list[tuple[Any, ...]]:
    """Rows of `chunks.COLUMNS` as `selectors.label_chunks` sends them: ages before and
    after the moment, whole seconds, tiny and large weights, every text in every place."""
    rows = []
    wants_lone = fmt == "dpo" and style == "standard"
    for n in range(60):
        text = TEXTS[n % len(TEXTS)]
        prompt = [{"role": "user", "content": TEXTS[(n + 1) % len(TEXTS)]}]
        if n % 7 == 3:
            prompt = [{"role": "system", "content": "Be brief."}, *prompt]
        lone_prompt = prompt[-1]["content"] if wants_lone and lone else None
        occurred = MOMENT - timedelta(days=n * 37 - 300, seconds=n, microseconds=n % 3 * 500)
        if n % 5 == 0:
            occurred = occurred.replace(microsecond=0)
        rows.append(
            (
                10_000 + n * 3,
                PAIR,
                ("edit", "regenerate", "review", 'odd "source"')[n % 4],
                None,
                (1.0, 0.35, 2.5e-7, 3.0e9)[n % 4],
                occurred,
                None if lone_prompt is not None else json.dumps(prompt),
                lone_prompt,
                f"chosen {n} {text}",
                text,
                None,
            )
        )
    return rows


def _same(fast: chunks.Chunk, slow: chunks.Chunk) -> None:
    assert fast.data == slow.data
    assert fast.meta == slow.meta
    assert fast.columns == slow.columns
    assert fast.rows == slow.rows
    assert fast.sources == slow.sources


@pytest.mark.parametrize(("fmt", "style", "bare"), TAKEN)
@pytest.mark.parametrize("as_of", [MOMENT, None])
def test_jsonl_by_column_is_the_row_loop(fmt, style, bare, as_of):
    rows = _rows(fmt, style)
    weight_of = RowWeight(as_of, 30.0)
    fast = chunks._jsonl_by_column(fmt, style, rows, weight_of, bare)
    assert fast is not None  # taken
    slow = chunks._jsonl_chunk(fmt, style, rows, weight_of, orjson.dumps, bare)
    assert slow.rows == len(rows) and slow.data.count(b"\n") == len(rows)
    _same(fast, slow)
    _same(chunks.jsonl_chunk(fmt, style, rows, weight_of, bare=bare), slow)


@pytest.mark.parametrize(("fmt", "style"), [(f, s) for f, s, bare in TAKEN if not bare])
@pytest.mark.parametrize("as_of", [MOMENT, None])
def test_columns_by_column_are_the_row_loop(fmt, style, as_of):
    rows = _rows(fmt, style)
    weight_of = RowWeight(as_of, 30.0)
    fast = chunks._columns_by_column(fmt, style, rows, weight_of)
    assert fast is not None
    slow = chunks._column_chunk(fmt, style, rows, weight_of)
    assert len(slow.columns["id"]) == len(rows)
    _same(fast, slow)
    _same(chunks.column_chunk(fmt, style, rows, weight_of), slow)


def test_chunks_unlike_the_common_ones_go_through_the_row_loop():
    weight_of = RowWeight(MOMENT, 30.0)
    # A prompt written from its messages (no lone user prompt) in standard DPO.
    rows = _rows("dpo", "standard")
    rows[5] = (*rows[5][:6], json.dumps([{"role": "system", "content": "x"}]), None, *rows[5][8:])
    assert chunks._jsonl_by_column("dpo", "standard", rows, weight_of, False) is None
    assert chunks._columns_by_column("dpo", "standard", rows, weight_of) is None
    slow = chunks._jsonl_chunk("dpo", "standard", rows, weight_of, orjson.dumps, False)
    assert b'"prompt":"system: x"' in slow.data
    _same(chunks.jsonl_chunk("dpo", "standard", rows, weight_of, bare=False), slow)
    # A row that is not a pair (the format leaves it out).
    rows = _rows("dpo", "conversational")
    rows[7] = (rows[7][0], Label.Kind.COMPLETION.value, *rows[7][2:])
    assert chunks._jsonl_by_column("dpo", "conversational", rows, weight_of, False) is None
    assert chunks._columns_by_column("dpo", "conversational", rows, weight_of) is None
    slow = chunks._jsonl_chunk("dpo", "conversational", rows, weight_of, orjson.dumps, False)
    assert slow.rows == len(rows) - 1
    _same(chunks.jsonl_chunk("dpo", "conversational", rows, weight_of, bare=False), slow)
    column_slow = chunks._column_chunk("dpo", "conversational", rows, weight_of)
    _same(chunks.column_chunk("dpo", "conversational", rows, weight_of), column_slow)
    # Formats with rows of their own per kind.
    for fmt in ("kto", "sft"):
        assert chunks._jsonl_by_column(fmt, "standard", rows, weight_of, False) is None
        assert chunks._columns_by_column(fmt, "standard", rows, weight_of) is None


def test_an_infinite_weight_is_written_as_json_dumps_writes_it():
    weight_of = RowWeight(MOMENT, 30.0)
    rows = _rows("dpo", "standard")
    rows[2] = (*rows[2][:4], float("inf"), *rows[2][5:])
    assert chunks._jsonl_by_column("dpo", "standard", rows, weight_of, False) is None
    chunk = chunks.jsonl_chunk("dpo", "standard", rows, weight_of, bare=False)
    assert b'"weight":Infinity' in chunk.data
    _same(chunk, chunks._jsonl_chunk("dpo", "standard", rows, weight_of, orjson.dumps, False))
    # Parquet keeps it as a float, either way.
    fast = chunks._columns_by_column("dpo", "standard", rows, weight_of)
    assert fast is not None and fast.columns["weight"][2] == float("inf")
    _same(fast, chunks._column_chunk("dpo", "standard", rows, weight_of))


def test_a_lone_surrogate_fails_as_before():
    """Never from PostgreSQL; it cannot be written as UTF-8 on either path."""
    rows = _rows("dpo", "conversational")
    rows[1] = (*rows[1][:8], "bad \ud800", *rows[1][9:])
    with pytest.raises(UnicodeEncodeError):
        chunks.jsonl_chunk("dpo", "conversational", rows, RowWeight(MOMENT, 30.0), bare=False)
