"""Validation of incoming events (DESIGN.md, "Ingestion API").

Hand-written rather than DRF serializers: a 1,000-event batch is validated on the request
path, and this is ~20x faster while still naming the field in every message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

EVENT_TYPES = (
    "generation",
    "edit",
    "regenerate",
    "copy",
    "share",
    "view",
    "rating",
    "session_outcome",
)
OUTCOMES = ("completed", "abandoned")
MAX_ID_LENGTH = 255
MAX_FUTURE_SKEW = timedelta(days=1)


@dataclass(frozen=True)
class ValidEvent:
    """An event that passed validation, normalised for storage."""

    client_id: str
    type: str
    timestamp: datetime
    session_ref: str
    user_ref: str
    generation_ref: str
    payload: dict[str, Any]


class _Invalid(Exception):
    pass


def _text(value: Any, *, max_bytes: int, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise _Invalid("This field is required.")
        return None
    if not isinstance(value, str):
        raise _Invalid("Must be a string.")
    if len(value) > max_bytes // 4 and len(value.encode()) > max_bytes:
        raise _Invalid(f"Must be at most {max_bytes} bytes.")
    return value


def _ref(value: Any, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise _Invalid("This field is required.")
        return None
    if not isinstance(value, str):
        raise _Invalid("Must be a string.")
    if len(value) > MAX_ID_LENGTH:
        raise _Invalid(f"Must be at most {MAX_ID_LENGTH} characters.")
    return value


def _timestamp(value: Any, now: datetime) -> datetime:
    if not isinstance(value, str) or not value:
        raise _Invalid("This field is required: an ISO 8601 date-time with a timezone.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"Not an ISO 8601 date-time: {value[:40]!r}.") from None
    if timezone.is_naive(parsed):
        raise _Invalid("Must include a timezone (e.g. 'Z' or '+00:00').")
    if parsed > now + MAX_FUTURE_SKEW:
        raise _Invalid("Is more than a day in the future.")
    return parsed


def _messages(value: Any, *, max_bytes: int) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": _text(value, max_bytes=max_bytes)}]
    if not isinstance(value, list) or not value:
        raise _Invalid("Must be a string or a non-empty list of messages {role, content}.")
    messages = []
    for position, message in enumerate(value):
        if not isinstance(message, dict):
            raise _Invalid(f"Message {position} must be an object with role and content.")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role:
            raise _Invalid(f"Message {position} needs a role.")
        try:
            content = _text(content, max_bytes=max_bytes)
        except _Invalid as error:
            raise _Invalid(f"Message {position} content: {error}") from None
        messages.append({"role": role, "content": content})
    return messages


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid("Must be a number.")
    return value


def validate_event(raw: Any, *, max_text_bytes: int, now: datetime) -> ValidEvent:
    """A normalised event, or raises `EventInvalid` with one message per bad field."""
    if not isinstance(raw, dict):
        raise EventInvalid({"event": "Must be a JSON object."})
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {}

    def check(field: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        try:
            return fn(raw.get(field), *args, **kwargs)
        except _Invalid as error:
            errors[field] = str(error)
            return None

    client_id = check("id", _ref)
    event_type = raw.get("type")
    if event_type not in EVENT_TYPES:
        errors["type"] = f"Must be one of: {', '.join(EVENT_TYPES)}."
    timestamp = check("timestamp", _timestamp, now)
    session_ref = check("session_id", _ref)
    user_ref = check("user_id", _ref, required=False) or ""
    generation_ref = ""

    if event_type in EVENT_TYPES and event_type != "session_outcome":
        generation_ref = check("generation_id", _ref) or ""

    if event_type == "generation":
        payload["input"] = check("input", _messages, max_bytes=max_text_bytes)
        payload["output"] = check("output", _text, max_bytes=max_text_bytes)
        payload["model"] = check("model", _ref, required=False) or ""
        payload["replaces"] = check("replaces", _ref, required=False)
        metadata = raw.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            errors["metadata"] = "Must be an object."
        payload["metadata"] = metadata or {}
    elif event_type == "edit":
        payload["text"] = check("text", _text, max_bytes=max_text_bytes)
    elif event_type == "copy":
        text = check("text", _text, max_bytes=max_text_bytes, required=False)
        if text is not None:
            payload["text"] = text
    elif event_type == "view":
        dwell = raw.get("dwell_ms")
        if isinstance(dwell, bool) or not isinstance(dwell, int) or dwell < 0:
            errors["dwell_ms"] = "Must be a whole number of milliseconds, 0 or more."
        payload["dwell_ms"] = dwell
    elif event_type == "rating":
        payload["value"] = check("value", _number)
        comment = check("comment", _text, max_bytes=max_text_bytes, required=False)
        if comment is not None:
            payload["comment"] = comment
    elif event_type == "session_outcome":
        if raw.get("outcome") not in OUTCOMES:
            errors["outcome"] = f"Must be one of: {', '.join(OUTCOMES)}."
        payload["outcome"] = raw.get("outcome")
        signal = check("signal", _ref, required=False)
        if signal is not None:
            payload["signal"] = signal

    if errors:
        raise EventInvalid(errors)
    return ValidEvent(
        client_id=client_id,
        type=event_type,
        timestamp=timestamp,
        session_ref=session_ref,
        user_ref=user_ref,
        generation_ref=generation_ref,
        payload=payload,
    )


class EventInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors
