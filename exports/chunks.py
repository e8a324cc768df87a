"""Export rows a chunk of labels at a time, straight from the label columns: JSON lines for
JSONL files and Python column lists for Parquet, byte for byte what `formats.rows_for`
gives row by row (tests/exports/test_chunks.py compares the two on every format).

Why: per-row dicts and `json.dumps` cost about ten times what PostgreSQL needs to send
the same columns. Here PostgreSQL hands over the texts and a lone user prompt's text, and
Python escapes each text with orjson (what `json.dumps(text, ensure_ascii=False)` writes:
the same seven short escapes, `\\u00xx` in lower case for the other control characters,
nothing else), joins the pieces and computes the weight. orjson escapes a text about ten
times faster than `json.encoder.encode_basestring` and than PostgreSQL's `to_json`, which
took the database 4.5 s a million pairs (`escaped`: still supported, no longer used by
the build).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

import orjson

from exports.formats import META_FIELDS, prompt_text
from feedback.models import Label

# The columns `selectors.label_chunks` reads, in this order.
COLUMNS = (
    "id",
    "kind",
    "source",
    "label",
    "weight",
    "occurred_at",
    "prompt_json",  # the prompt (JSON text)
    "lone_prompt",  # a lone user message's text content, else None (see formats.prompt_text)
    "chosen",
    "rejected",
    "completion",
)
PAIR = Label.Kind.PREFERENCE_PAIR.value
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class RowWeight:
    """What a row's weight is measured with, as `services._weight` measures it: source
    weight x 0.5 ** (age_days / half_life_days), rounded to 6 places, age from `as_of` (0
    without one). The chunk functions compute it inline."""

    as_of: datetime | None
    half_life_days: float


def _escape(text: str) -> str:
    """`text` as a JSON string literal, as `json.dumps(text, ensure_ascii=False)` writes it."""
    try:
        return orjson.dumps(text).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (not from PostgreSQL): json writes it
        return encode_basestring(text)


def _assistant_json(text_json: str) -> str:
    return '[{"role":"assistant","content":' + text_json + "}]"


class Chunk:
    """One chunk's rows as JSON lines (`text`, and `meta_lines` for the sidecar of bare
    formats) or as columns (`columns`, lists by field name), and rows by source."""

    def __init__(self) -> None:
        self.text = ""
        self.meta_lines: list[str] = []
        self.columns: dict[str, list[Any]] = {}
        self.sources: Counter[str] = Counter()
        self.rows = 0


def jsonl_chunk(
    fmt: str,
    style: str,
    rows: Sequence[tuple[Any, ...]],
    weight_of: RowWeight,
    *,
    escaped: bool,
    bare: bool,
) -> Chunk:
    """The JSON lines of `rows` (tuples of COLUMNS). With `escaped`, the text columns
    (lone_prompt, chosen, rejected, completion) are already JSON strings; `bare` moves
    the meta fields to `meta_lines` (formats.BARE_FORMATS)."""
    chunk = Chunk()
    # The pieces of every line, joined once per chunk: a piece is copied once, not once
    # for each `+` after it.
    parts: list[str] = []
    add = parts.extend
    meta_lines, sources = chunk.meta_lines, chunk.sources
    conversational = style == "conversational"
    escape = (lambda text: text) if escaped else _escape  # noqa: E731
    wrap = _assistant_json if conversational else (lambda text: text)  # noqa: E731
    source_json: dict[str, str] = {}
    rows_out = 0
    pairs_only, sft = fmt in ("dpo", "openai_preference"), fmt == "sft"
    as_of, half_life = weight_of.as_of, weight_of.half_life_days
    for row_id, kind, source, label, weight, occurred_at, prompt_json, lone, *texts in rows:
        chosen, rejected, completion = texts
        is_pair = kind == PAIR
        if (pairs_only and not is_pair) or (sft and not (is_pair or label)):
            continue
        src = source_json.get(source)
        if src is None:
            src = source_json[source] = _dumps(source)
        # RowWeight inline (the hottest lines of an export); json.dumps writes a finite
        # float as its repr.
        age_days = 0.0
        if as_of is not None:
            age_days = (as_of - occurred_at).total_seconds() / 86400
            if age_days < 0:
                age_days = 0.0
        row_weight = round(weight * 0.5 ** (age_days / half_life), 6)
        meta_tail = (
            ',"source":',
            src,
            ',"weight":',
            repr(row_weight) if row_weight - row_weight == 0 else _dumps(row_weight),
            ',"created_at":"',
            occurred_at.isoformat().replace("+00:00", "Z"),
            '"}\n',
        )
        base = f"lbl_{row_id}"
        if fmt in ("dpo", "kto"):
            if conversational:
                prompt = _dumps(json.loads(prompt_json))
            elif lone is not None:
                prompt = escape(lone)
            else:
                prompt = _dumps(prompt_text(json.loads(prompt_json)))
            if fmt == "dpo":
                add(('{"prompt":', prompt, ',"chosen":', wrap(escape(chosen))))
                add((',"rejected":', wrap(escape(rejected)), ',"id":"', base, '"'))
                add(meta_tail)
                rows_out += 1
            elif is_pair:
                add(('{"prompt":', prompt, ',"completion":', wrap(escape(chosen))))
                add((',"label":true,"id":"', base, '_chosen"'))
                add(meta_tail)
                add(('{"prompt":', prompt, ',"completion":', wrap(escape(rejected))))
                add((',"label":false,"id":"', base, '_rejected"'))
                add(meta_tail)
                rows_out += 2
                sources[source] += 1  # the second row
            else:
                add(('{"prompt":', prompt, ',"completion":', wrap(escape(completion))))
                add((',"label":true,"id":"' if label else ',"label":false,"id":"', base, '"'))
                add(meta_tail)
                rows_out += 1
        elif fmt == "sft":
            messages = json.loads(prompt_json)
            if isinstance(messages, list) and messages:
                answer = _assistant_json(escape(chosen if is_pair else completion))
                add(('{"messages":', _dumps(messages)[:-1], ",", answer[1:]))
            else:  # an empty (or odd) prompt: spread as rows_for spreads it
                raw = chosen if is_pair else completion
                text = json.loads(raw) if escaped else raw
                row = {"messages": [*messages, {"role": "assistant", "content": text}]}
                add((_dumps(row)[:-1],))
            add((',"id":"', base, '"'))
            add(meta_tail)
            rows_out += 1
        else:  # openai_preference
            add(('{"input":{"messages":', _dumps(json.loads(prompt_json))))
            add(('},"preferred_output":', _assistant_json(escape(chosen))))
            add((',"non_preferred_output":', _assistant_json(escape(rejected))))
            if bare:
                add(("}\n",))
                meta_lines.append("".join(('{"id":"', base, '"', *meta_tail)))
            else:
                add((',"id":"', base, '"'))
                add(meta_tail)
            rows_out += 1
        sources[source] += 1
    chunk.text = "".join(parts)
    chunk.rows = rows_out
    return chunk


def column_chunk(
    fmt: str, style: str, rows: Sequence[tuple[Any, ...]], weight_of: RowWeight
) -> Chunk:
    """The column values of `rows` (tuples of COLUMNS, texts unescaped), by field name in
    the order of `formats.arrow_schema`, as `rows_for` would give them row by row."""
    chunk = Chunk()
    sources = chunk.sources
    conversational = style == "conversational"
    names = {
        "dpo": ("prompt", "chosen", "rejected"),
        "kto": ("prompt", "completion", "label"),
        "sft": ("messages",),
        "openai_preference": ("input", "preferred_output", "non_preferred_output"),
    }[fmt]
    columns: dict[str, list[Any]] = {name: [] for name in (*names, *META_FIELDS)}
    ids, source_col, weights, created = (columns[name] for name in META_FIELDS)

    def assistant(text: str) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": text}]

    answer = assistant if conversational else (lambda text: text)  # noqa: E731
    pairs_only, sft = fmt in ("dpo", "openai_preference"), fmt == "sft"
    as_of, half_life = weight_of.as_of, weight_of.half_life_days
    for row_id, kind, source, label, weight, occurred_at, prompt_json, lone, *texts in rows:
        chosen, rejected, completion = texts
        is_pair = kind == PAIR
        if (pairs_only and not is_pair) or (sft and not (is_pair or label)):
            continue
        age_days = 0.0  # RowWeight inline, as in jsonl_chunk
        if as_of is not None:
            age_days = (as_of - occurred_at).total_seconds() / 86400
            if age_days < 0:
                age_days = 0.0
        row_weight = round(weight * 0.5 ** (age_days / half_life), 6)
        created_at = occurred_at.isoformat().replace("+00:00", "Z")
        base = f"lbl_{row_id}"
        row_ids: tuple[str, ...]
        if fmt in ("dpo", "kto"):
            if conversational:
                prompt = json.loads(prompt_json)
            elif lone is not None:
                prompt = lone
            else:
                prompt = prompt_text(json.loads(prompt_json))
            if fmt == "dpo":
                columns["prompt"].append(prompt)
                columns["chosen"].append(answer(chosen))
                columns["rejected"].append(answer(rejected))
                row_ids = (base,)
            elif is_pair:
                columns["prompt"] += (prompt, prompt)
                columns["completion"] += (answer(chosen), answer(rejected))
                columns["label"] += (True, False)
                row_ids = (f"{base}_chosen", f"{base}_rejected")
            else:
                columns["prompt"].append(prompt)
                columns["completion"].append(answer(completion))
                columns["label"].append(bool(label))
                row_ids = (base,)
        elif fmt == "sft":
            text = chosen if is_pair else completion
            columns["messages"].append([*json.loads(prompt_json), *assistant(text)])
            row_ids = (base,)
        else:  # openai_preference
            columns["input"].append({"messages": json.loads(prompt_json)})
            columns["preferred_output"].append(assistant(chosen))
            columns["non_preferred_output"].append(assistant(rejected))
            row_ids = (base,)
        for one_id in row_ids:
            ids.append(one_id)
            source_col.append(source)
            weights.append(row_weight)
            created.append(created_at)
        sources[source] += len(row_ids)
    chunk.columns = columns
    chunk.rows = len(ids)
    return chunk
