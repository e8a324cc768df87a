"""Event payload builders: valid events per docs/ingestion.md, overridable field by field."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

_ids = itertools.count(1)
BASE_TIME = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


# A summary and the user's correction of it: a substantive edit (numbers, names, a clause).
OUTPUT = (
    "The quarterly report says revenue grew four percent, driven by the new subscription "
    "tier, while costs stayed flat and the churn rate fell slightly across all regions."
)
CORRECTED = (
    "The quarterly report says revenue grew five percent, driven by the enterprise tier, "
    "while costs stayed flat and churn fell slightly in Europe."
)


def at(seconds: float) -> str:
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(type_: str, *, session: str = "s1", t: float = 0, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": f"evt-{next(_ids)}",
        "type": type_,
        "timestamp": at(t),
        "session_id": session,
        "user_id": "u1",
    }
    data.update(fields)
    return data


def generation(gen: str, *, output: str = "The report says revenue grew 4%.", **fields: Any):
    fields.setdefault("input", [{"role": "user", "content": "Summarise this report."}])
    fields.setdefault("model", "acme-chat-2")
    fields.setdefault("replaces", None)
    fields.setdefault("metadata", {"feature": "summarise"})
    return event("generation", generation_id=gen, output=output, **fields)


def edit(gen: str, text: str, **fields: Any):
    return event("edit", generation_id=gen, text=text, **fields)


def one_of_each(session: str = "s1") -> list[dict[str, Any]]:
    """Every event type once, as in the example of docs/api.md."""
    return [
        generation("g1", session=session, t=0),
        edit("g1", "The report says revenue grew 5% in Q3.", session=session, t=10),
        event("regenerate", generation_id="g1", session=session, t=20),
        generation("g2", session=session, t=21, replaces="g1", output="Revenue grew 5%."),
        event("copy", generation_id="g2", session=session, t=30, text="Revenue"),
        event("share", generation_id="g2", session=session, t=31),
        event("view", generation_id="g2", session=session, t=32, dwell_ms=5400),
        event("rating", generation_id="g2", session=session, t=33, value=1, comment="good"),
        event("session_outcome", session=session, t=40, outcome="completed", signal="tests_passed"),
    ]
