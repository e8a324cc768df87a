"""Row shapes of each export format (DESIGN.md, "Exports"), as JSON and as Arrow schemas.

Every row carries `id`, `source`, `weight` and `created_at`, except OpenAI's preference
format, which its consumer wants bare: those fields go to a sidecar file, line for line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from feedback.models import Label

META_FIELDS = ("id", "source", "weight", "created_at")
BARE_FORMATS = frozenset({"openai_preference"})

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
META_SCHEMA: list[tuple[str, pa.DataType]] = [
    ("id", pa.string()),
    ("source", pa.string()),
    ("weight", pa.float64()),
    ("created_at", pa.string()),
]


@dataclass(frozen=True)
class LabelRow:
    """The columns an export reads of one label."""

    id: int
    kind: str
    source: str
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    completion: str
    label: bool | None
    weight: float
    occurred_at: datetime
    id_prefix: str = "lbl"  # "item" for pairs judged directly by reviewers

    @property
    def is_pair(self) -> bool:
        return self.kind == Label.Kind.PREFERENCE_PAIR


def prompt_text(messages: list[dict[str, str]]) -> str:
    """The standard (string) prompt: a lone user message as it is, otherwise the
    conversation as 'role: content' paragraphs."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0].get("content", "")
    return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _meta(row_id: str, label: LabelRow, weight: float) -> dict[str, Any]:
    return {
        "id": row_id,
        "source": label.source,
        "weight": weight,
        "created_at": label.occurred_at.isoformat().replace("+00:00", "Z"),
    }


def kinds_for(fmt: str) -> tuple[str, ...]:
    """Label kinds a format can use."""
    if fmt in ("dpo", "openai_preference"):
        return (Label.Kind.PREFERENCE_PAIR,)
    return (Label.Kind.PREFERENCE_PAIR, Label.Kind.COMPLETION)


def rows_for(fmt: str, style: str, label: LabelRow, weight: float) -> Iterator[dict[str, Any]]:
    """The export rows one label gives in `fmt` (a pair gives two KTO rows, one each way)."""
    conversational = style == "conversational"
    prompt: Any = label.prompt if conversational else prompt_text(label.prompt)
    base = f"{label.id_prefix}_{label.id}"
    if fmt == "dpo" and label.is_pair:
        chosen = _assistant(label.chosen) if conversational else label.chosen
        rejected = _assistant(label.rejected) if conversational else label.rejected
        yield {
            "prompt": prompt,
            "chosen": chosen,
            "rejected": rejected,
            **_meta(base, label, weight),
        }
    elif fmt == "kto":
        if label.is_pair:
            pairs = [
                (f"{base}_chosen", label.chosen, True),
                (f"{base}_rejected", label.rejected, False),
            ]
        else:
            pairs = [(base, label.completion, bool(label.label))]
        for row_id, text, value in pairs:
            completion = _assistant(text) if conversational else text
            yield {
                "prompt": prompt,
                "completion": completion,
                "label": value,
                **_meta(row_id, label, weight),
            }
    elif fmt == "sft":
        text = label.chosen if label.is_pair else label.completion
        if label.is_pair or label.label:
            yield {"messages": [*label.prompt, *_assistant(text)], **_meta(base, label, weight)}
    elif fmt == "openai_preference" and label.is_pair:
        yield {
            "input": {"messages": label.prompt},
            "preferred_output": _assistant(label.chosen),
            "non_preferred_output": _assistant(label.rejected),
            **_meta(base, label, weight),
        }


def arrow_schema(fmt: str, style: str) -> pa.Schema:
    """Parquet columns: the same as the JSON rows (meta fields included, also for OpenAI)."""
    conversational = style == "conversational"
    prompt = MESSAGES if conversational else pa.string()
    answer = MESSAGES if conversational else pa.string()
    by_format: dict[str, list[tuple[str, pa.DataType]]] = {
        "dpo": [("prompt", prompt), ("chosen", answer), ("rejected", answer)],
        "kto": [("prompt", prompt), ("completion", answer), ("label", pa.bool_())],
        "sft": [("messages", MESSAGES)],
        "openai_preference": [
            ("input", pa.struct([("messages", MESSAGES)])),
            ("preferred_output", MESSAGES),
            ("non_preferred_output", MESSAGES),
        ],
    }
    return pa.schema(by_format[fmt] + META_SCHEMA)
