"""Export rows a chunk of labels at a time, straight from the label columns: JSON lines for
JSONL files and Python column lists for Parquet, byte for byte what `formats.rows_for`
gives row by row (tests/exports/test_chunks.py compares the two on every format).

Why: per-row dicts and `json.dumps` cost about ten times what PostgreSQL needs to send
the same columns. Here PostgreSQL hands over the texts and a lone user prompt's text, and
Python escapes each text with orjson (what `json.dumps(text, ensure_ascii=False)` writes:
the same seven short escapes, `\\u00xx` in lower case for the other control characters,
nothing else), joins the pieces and computes the weight. orjson escapes a text about ten
times faster than `json.encoder.encode_basestring` and than PostgreSQL's `to_json`, which
took the database 4.5 s a million pairs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import repeat
from json.encoder import encode_basestring
from math import isfinite
from operator import mul, truediv
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


def _escape_slowly(text: str) -> bytes:
    """What orjson refuses: a lone surrogate (never from PostgreSQL), which cannot be
    written as UTF-8 either way (UnicodeEncodeError, as before orjson)."""
    return encode_basestring(text).encode()


class Chunk:
    """One chunk's rows as JSON lines (`data`, and `meta` for the sidecar of bare
    formats, both UTF-8) or as columns (`columns`, lists by field name), and rows by
    source."""

    def __init__(self) -> None:
        self.data = b""
        self.meta = b""
        self.columns: dict[str, list[Any]] = {}
        self.sources: Counter[str] = Counter()
        self.rows = 0


def jsonl_chunk(
    fmt: str,
    style: str,
    rows: Sequence[tuple[Any, ...]],
    weight_of: RowWeight,
    *,
    bare: bool,
) -> Chunk:
    """The JSON lines of `rows` (tuples of COLUMNS, texts unescaped); `bare` moves the meta
    fields to `meta` (formats.BARE_FORMATS)."""
    try:
        chunk = _jsonl_by_column(fmt, style, rows, weight_of, bare)
        if chunk is not None:
            return chunk
        return _jsonl_chunk(fmt, style, rows, weight_of, orjson.dumps, bare)
    except orjson.JSONEncodeError:
        return _jsonl_chunk(fmt, style, rows, weight_of, _escape_slowly, bare)


# The by-column path: a chunk's rows taken column by column, each column mapped through C
# functions (orjson, float and datetime methods, bytes formatting) with no Python code run
# for each row, which is what the row loop below spends most of its time on. It takes the
# chunks whose rows all look alike (every row a preference pair, every standard DPO prompt
# a lone user message, every weight finite); any other chunk goes through the row loop.
# Same bytes either way (tests/exports/test_chunks.py, test_fast_paths.py).
_ASSISTANT_OPEN, _ASSISTANT_CLOSE = b'[{"role":"assistant","content":', b"}]"
_META_TAIL = b',"id":"lbl_%d","source":%b,"weight":%a,"created_at":"%b"}\n'
_LINE_TEMPLATES = {
    # (format, conversational): a line before its meta fields, from its escaped pieces.
    ("dpo", False): b'{"prompt":%b,"chosen":%b,"rejected":%b',
    ("dpo", True): (
        b'{"prompt":%b,"chosen":'
        + _ASSISTANT_OPEN
        + b"%b"
        + _ASSISTANT_CLOSE
        + b',"rejected":'
        + _ASSISTANT_OPEN
        + b"%b"
        + _ASSISTANT_CLOSE
    ),
    ("openai_preference", False): (
        b'{"input":{"messages":%b},"preferred_output":'
        + _ASSISTANT_OPEN
        + b"%b"
        + _ASSISTANT_CLOSE
        + b',"non_preferred_output":'
        + _ASSISTANT_OPEN
        + b"%b"
        + _ASSISTANT_CLOSE
    ),
}
_LINE_TEMPLATES[("openai_preference", True)] = _LINE_TEMPLATES[("openai_preference", False)]


def _weights(
    weights: Iterable[float], occurred: Iterable[datetime], weight_of: RowWeight
) -> list[float]:
    """Each row's weight, as the row loop computes it (the same operations in the same
    order, so the same floats)."""
    as_of, half_life = weight_of.as_of, weight_of.half_life_days
    if as_of is None:
        return list(map(round, map(mul, weights, repeat(0.5 ** (0.0 / half_life))), repeat(6)))
    ages = map(truediv, map(timedelta.total_seconds, map(as_of.__sub__, occurred)), repeat(86400))
    # max(age, 0.0) keeps the age when it is not below zero, as the loop's `if age < 0`.
    factors = map(pow, repeat(0.5), map(truediv, map(max, ages, repeat(0.0)), repeat(half_life)))
    return list(map(round, map(mul, weights, factors), repeat(6)))


def _created_at(occurred: Iterable[datetime]) -> Iterator[str]:
    """Each row's `created_at`, as the row loop writes it."""
    return map(str.replace, map(datetime.isoformat, occurred), repeat("+00:00"), repeat("Z"))


def _pair_columns(
    fmt: str, style: str, rows: Sequence[tuple[Any, ...]]
) -> tuple[tuple[Any, ...], ...] | None:
    """The chunk's columns (COLUMNS order) if the by-column path takes it, else None."""
    if not rows or fmt not in ("dpo", "openai_preference"):
        return None
    columns = tuple(zip(*rows, strict=True))
    kinds, lone = columns[1], columns[7]
    if kinds.count(PAIR) != len(rows):
        return None
    if fmt == "dpo" and style != "conversational" and lone.count(None):
        return None  # some prompt is written from its messages (prompt_text)
    return columns


def _jsonl_by_column(
    fmt: str,
    style: str,
    rows: Sequence[tuple[Any, ...]],
    weight_of: RowWeight,
    bare: bool,
) -> Chunk | None:
    """`jsonl_chunk` column by column, or None for a chunk it does not take."""
    columns = _pair_columns(fmt, style, rows)
    if columns is None:
        return None
    ids, _, sources, _, weights, occurred, prompt_json, lone, chosen, rejected, _ = columns
    row_weights = _weights(weights, occurred, weight_of)
    if not all(map(isfinite, row_weights)):
        return None  # written as json.dumps writes them, by the loop
    conversational = style == "conversational"
    escape = orjson.dumps
    if fmt == "dpo" and not conversational:
        prompts: Iterable[bytes] = map(escape, lone)
    else:
        prompts = map(str.encode, map(_dumps, map(json.loads, prompt_json)))
    source_json = {source: _dumps(source).encode() for source in set(sources)}
    texts = zip(prompts, map(escape, chosen), map(escape, rejected), strict=True)
    created = map(str.encode, _created_at(occurred))
    meta = zip(ids, map(source_json.__getitem__, sources), row_weights, created, strict=True)
    head = _LINE_TEMPLATES[(fmt, conversational)]
    chunk = Chunk()
    if bare:
        chunk.data = b"".join(map((head + b"}\n").__mod__, texts))
        chunk.meta = b"".join(map((b"{" + _META_TAIL[1:]).__mod__, meta))
    else:
        line = (head + _META_TAIL).__mod__
        chunk.data = b"".join(map(line, map(tuple.__add__, texts, meta)))
    chunk.sources = Counter(sources)
    chunk.rows = len(rows)
    return chunk


def _jsonl_chunk(
    fmt: str,
    style: str,
    rows: Sequence[tuple[Any, ...]],
    weight_of: RowWeight,
    escape: Callable[[str], bytes],
    bare: bool,
) -> Chunk:
    """`jsonl_chunk` with `escape` writing a text as its JSON string, UTF-8 encoded. The
    long texts go from `escape` into the lines as they are; the short pieces of a row are
    formatted and encoded together."""
    chunk = Chunk()
    # The pieces of a line joined at once into the chunk's buffer: a piece is copied once,
    # not once for each `+` after it, and not kept (orjson's bytes hold several times
    # their length: a chunk's pieces held till its end took 100 MB).
    out = bytearray()

    def add(pieces: tuple[bytes, ...]) -> None:
        out.extend(b"".join(pieces))

    meta_lines: list[str] = []
    sources = chunk.sources
    conversational = style == "conversational"

    def assistant(text_json: bytes) -> bytes:
        return b'[{"role":"assistant","content":' + text_json + b"}]"

    wrap = assistant if conversational else (lambda text: text)  # noqa: E731
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
        weight_json = repr(row_weight) if row_weight - row_weight == 0 else _dumps(row_weight)
        created_at = occurred_at.isoformat().replace("+00:00", "Z")
        # What ends a row, after its id: the other meta fields and "}\n".
        meta_tail = f',"source":{src},"weight":{weight_json},"created_at":"{created_at}"}}\n'
        base = f"lbl_{row_id}"
        if fmt in ("dpo", "kto"):
            if conversational:
                prompt = _dumps(json.loads(prompt_json)).encode()
            elif lone is not None:
                prompt = escape(lone)
            else:
                prompt = _dumps(prompt_text(json.loads(prompt_json))).encode()
            if fmt == "dpo":
                add((b'{"prompt":', prompt, b',"chosen":', wrap(escape(chosen))))
                add((b',"rejected":', wrap(escape(rejected))))
                add((f',"id":"{base}"{meta_tail}'.encode(),))
                rows_out += 1
            elif is_pair:
                add((b'{"prompt":', prompt, b',"completion":', wrap(escape(chosen))))
                add((f',"label":true,"id":"{base}_chosen"{meta_tail}'.encode(),))
                add((b'{"prompt":', prompt, b',"completion":', wrap(escape(rejected))))
                add((f',"label":false,"id":"{base}_rejected"{meta_tail}'.encode(),))
                rows_out += 2
                sources[source] += 1  # the second row
            else:
                add((b'{"prompt":', prompt, b',"completion":', wrap(escape(completion))))
                value = "true" if label else "false"
                add((f',"label":{value},"id":"{base}"{meta_tail}'.encode(),))
                rows_out += 1
        elif fmt == "sft":
            messages = json.loads(prompt_json)
            if isinstance(messages, list) and messages:
                answer = assistant(escape(chosen if is_pair else completion))
                add((b'{"messages":', _dumps(messages)[:-1].encode(), b",", answer[1:]))
            else:  # an empty (or odd) prompt: spread as rows_for spreads it
                text = chosen if is_pair else completion
                row = {"messages": [*messages, {"role": "assistant", "content": text}]}
                add((_dumps(row)[:-1].encode(),))
            add((f',"id":"{base}"{meta_tail}'.encode(),))
            rows_out += 1
        else:  # openai_preference
            add((b'{"input":{"messages":', _dumps(json.loads(prompt_json)).encode()))
            add((b'},"preferred_output":', assistant(escape(chosen))))
            add((b',"non_preferred_output":', assistant(escape(rejected))))
            if bare:
                add((b"}\n",))
                meta_lines.append(f'{{"id":"{base}"{meta_tail}')
            else:
                add((f',"id":"{base}"{meta_tail}'.encode(),))
            rows_out += 1
        sources[source] += 1
    chunk.data = bytes(out)
    chunk.meta = "".join(meta_lines).encode()
    chunk.rows = rows_out
    return chunk


def column_chunk(
    fmt: str, style: str, rows: Sequence[tuple[Any, ...]], weight_of: RowWeight
) -> Chunk:
    """The column values of `rows` (tuples of COLUMNS, texts unescaped), by field name in
    the order of `formats.arrow_schema`, as `rows_for` would give them row by row."""
    by_column = _columns_by_column(fmt, style, rows, weight_of)
    if by_column is not None:
        return by_column
    return _column_chunk(fmt, style, rows, weight_of)


def _column_chunk(
    fmt: str, style: str, rows: Sequence[tuple[Any, ...]], weight_of: RowWeight
) -> Chunk:
    """`column_chunk` row by row: every chunk."""
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


def _columns_by_column(
    fmt: str, style: str, rows: Sequence[tuple[Any, ...]], weight_of: RowWeight
) -> Chunk | None:
    """`column_chunk` column by column (see `_jsonl_by_column`), or None for a chunk it
    does not take."""
    columns = _pair_columns(fmt, style, rows)
    if columns is None:
        return None
    ids, _, sources, _, weights, occurred, prompt_json, lone, chosen, rejected, _ = columns
    conversational = style == "conversational"
    out: dict[str, list[Any]] = {}
    if fmt == "dpo":
        if conversational:
            out["prompt"] = list(map(json.loads, prompt_json))
            out["chosen"] = [[{"role": "assistant", "content": text}] for text in chosen]
            out["rejected"] = [[{"role": "assistant", "content": text}] for text in rejected]
        else:
            out.update(prompt=list(lone), chosen=list(chosen), rejected=list(rejected))
    else:  # openai_preference
        out["input"] = [{"messages": messages} for messages in map(json.loads, prompt_json)]
        out["preferred_output"] = [[{"role": "assistant", "content": text}] for text in chosen]
        out["non_preferred_output"] = [
            [{"role": "assistant", "content": text}] for text in rejected
        ]
    out["id"] = list(map("lbl_%d".__mod__, ids))
    out["source"] = list(sources)
    out["weight"] = _weights(weights, occurred, weight_of)
    out["created_at"] = list(_created_at(occurred))
    chunk = Chunk()
    chunk.columns = out
    chunk.sources = Counter(sources)
    chunk.rows = len(rows)
    return chunk
