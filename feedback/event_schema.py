"""Parsing and validation of incoming events (docs/ingestion.md; the endpoint: docs/api.md).

The limits and normalisations are documented for clients in docs/ingestion.md; keep the two
in step. The rule: whatever the database or Python cannot hold is refused with the field
named, before any write, except in free text, where refusing would lose a user's words:
there NUL and unpaired surrogates become U+FFFD.

Hand-written rather than DRF serializers: a 1,000-event batch is validated on the request
path, and this is ~20x faster while still naming the field in every message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, overload

from core.jsontext import INEXACT, loads_exact

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
MAX_ID_LENGTH = 255  # Event.client_id, Session.external_id and the other *_ref columns
MAX_MODEL_LENGTH = 200  # Generation.model
MAX_ROLE_LENGTH = 64
MAX_METADATA_DEPTH = 20
MAX_METADATA_BYTES = 16 * 1024
MAX_DWELL_MS = 24 * 60 * 60 * 1000
MAX_RATING = 2**53  # exact as a double, so every reader (JavaScript too) sees the same value
INT64 = 2**63
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(days=1)

# PostgreSQL stores no NUL in text or jsonb, and UTF-8 cannot encode a surrogate: any left in a
# str is unpaired, as json.loads has joined every escaped pair into one character.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Not allowed in ids and names: the above and every C0/C1 control character.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET_OR_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip_whitespace(text: str, pos: int = 0) -> int:
    """The position of the first non-whitespace character at or after `pos`."""
    match = _WHITESPACE.match(text, pos)  # matches everywhere, if only the empty string
    return match.end() if match else pos


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


class BodyInvalid(Exception):
    """The request body as a whole cannot be read; `field` names the part at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class EventInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


class _Invalid(Exception):
    pass


class _TooDeep:
    """Stands for a value nested deeper than the JSON parser can go (see `loads_batch`)."""

    def __repr__(self) -> str:
        return "TOO_DEEP"


TOO_DEEP = _TooDeep()


# --- Body -------------------------------------------------------------------------------


def _parse_int(digits: str) -> int | float:
    # More than 19 digits is beyond 64 bits anyway; mapping it to ±inf makes it fail every
    # range check below like 1e400 does, instead of costing int()'s 4,300-digit ValueError,
    # which would refuse the whole batch.
    if len(digits) <= 20:
        return int(digits)
    return -math.inf if digits.startswith("-") else math.inf


_decoder = json.JSONDecoder(parse_int=_parse_int)


def loads_batch(body: bytes) -> Any:
    """The parsed request body, or raises `BodyInvalid`.

    NaN, Infinity and out-of-range numbers are let through as non-finite floats for the
    field checks to refuse by name. A value nested too deeply for the parser (about 1,500
    levels) inside an event or the top-level object becomes `TOO_DEEP`, so only that field
    of that event is refused and the rest of the batch is kept.

    orjson reads the body where it reads it exactly as `json` does (core.jsontext
    `loads_exact`: a 1,000-event batch in 2.6 ms against 3.0-4.0). Elsewhere (an integer beyond
    64 bits, NaN, 1e400, a lone surrogate, nesting past 1,024 levels, UTF-16, a byte order
    mark, a body that is not JSON) it is read as below, so the value or the error is what
    `json` with `_parse_int` gives.
    """
    value = loads_exact(body)
    if value is not INEXACT:
        return value
    try:
        return json.loads(body, parse_int=_parse_int)
    except RecursionError:
        pass
    except ValueError as error:  # includes UnicodeDecodeError
        raise BodyInvalid("body", f"Request body is not valid JSON: {error}.") from None
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads does
        start = _skip_whitespace(text)
        if not text.startswith("{", start):
            raise RecursionError
        value, end = _decode_shallow(text, start, levels=3)
        if _skip_whitespace(text, end) != len(text):
            raise ValueError("Extra data after the JSON object")
    except RecursionError:
        raise BodyInvalid("body", "Request body is nested too deeply.") from None
    except (ValueError, IndexError) as error:
        raise BodyInvalid("body", f"Request body is not valid JSON: {error}.") from None
    return value


def _decode_shallow(text: str, pos: int, *, levels: int) -> tuple[Any, int]:
    """Decode the value at `pos`, opening `levels` levels of containers one member at a time.

    Slower than json.loads, and used only after it gave up on the depth of the body.
    """
    opener = text[pos]
    if levels == 0 or opener not in "[{":
        try:
            return _decoder.raw_decode(text, pos)
        except RecursionError:
            return TOO_DEEP, _skip_value(text, pos)
    closer = "]" if opener == "[" else "}"
    container: Any = [] if opener == "[" else {}
    pos = _skip_whitespace(text, pos + 1)
    if text[pos] == closer:
        return container, pos + 1
    while True:
        if opener == "{":
            key_match = _JSON_STRING.match(text, pos)
            if key_match is None:
                raise ValueError(f"Expecting a property name at char {pos}")
            key = json.loads(key_match.group())
            pos = _skip_whitespace(text, key_match.end())
            if text[pos] != ":":
                raise ValueError(f"Expecting ':' at char {pos}")
            pos = _skip_whitespace(text, pos + 1)
            container[key], pos = _decode_shallow(text, pos, levels=levels - 1)
        else:
            item, pos = _decode_shallow(text, pos, levels=levels - 1)
            container.append(item)
        pos = _skip_whitespace(text, pos)
        if text[pos] == closer:
            return container, pos + 1
        if text[pos] != ",":
            raise ValueError(f"Expecting ',' or {closer!r} at char {pos}")
        pos = _skip_whitespace(text, pos + 1)


def _skip_value(text: str, pos: int) -> int:
    """The end of the (deeply nested) container at `pos`, by its balanced brackets."""
    depth = 0
    for token in _JSON_BRACKET_OR_STRING.finditer(text, pos):
        symbol = token.group()
        if symbol in "[{":
            depth += 1
        elif symbol in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    raise ValueError("Unbalanced brackets")


# --- Fields ------------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """`value` with NUL and unpaired surrogates replaced by U+FFFD, so it can be stored."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode()  # in C, several times faster than a regex scan of the text
        except UnicodeEncodeError:
            value = _SURROGATE.sub("\ufffd", value)
    return value


@overload
def _text(value: Any, *, max_bytes: int, required: Literal[True] = True) -> str: ...
@overload
def _text(value: Any, *, max_bytes: int, required: bool) -> str | None: ...
def _text(value: Any, *, max_bytes: int, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise _Invalid("This field is required.")
        return None
    if not isinstance(value, str):
        raise _Invalid("Must be a string.")
    value = clean_text(value)
    if len(value) > max_bytes // 4 and len(value.encode()) > max_bytes:
        raise _Invalid(f"Must be at most {max_bytes} bytes.")
    return value


@overload
def _ref(value: Any, *, required: Literal[True] = True, max_length: int = MAX_ID_LENGTH) -> str: ...
@overload
def _ref(value: Any, *, required: bool, max_length: int = MAX_ID_LENGTH) -> str | None: ...
def _ref(value: Any, *, required: bool = True, max_length: int = MAX_ID_LENGTH) -> str | None:
    """An id or a name: refused, not repaired, when it holds what cannot be stored or read."""
    if value is None or value == "":
        if required:
            raise _Invalid("This field is required.")
        return None
    if not isinstance(value, str):
        raise _Invalid("Must be a string.")
    if len(value) > max_length:
        raise _Invalid(f"Must be at most {max_length} characters.")
    if not value.isprintable() and (bad := _CONTROL.search(value)):
        raise _Invalid(
            f"Must not contain control characters, NUL or unpaired surrogates "
            f"(U+{ord(bad.group()):04X} at position {bad.start()})."
        )
    return value


def _session_ref(value: Any) -> str:
    ref = _ref(value)
    # Read back as one path segment or more of /api/v1/sessions/<id>, where clients and
    # proxies remove "." and ".." segments: such an id could be written but never read.
    if "." in ref and any(part in (".", "..") for part in ref.split("/")):
        raise _Invalid("Must not have '.' or '..' as a '/'-separated part.")
    return ref


def _timestamp(value: Any, now: datetime) -> datetime:
    if not isinstance(value, str) or not value:
        raise _Invalid("This field is required: an ISO 8601 date-time with a timezone.")
    try:
        if len(value) > 64 or not value.isascii() or not value.isprintable():
            raise ValueError
        # RFC 3339 allows a lowercase "t" and "z"; nothing else in the format is a letter.
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise _Invalid(f"Not an ISO 8601 date-time: {value[:40]!r}.") from None
    if parsed.utcoffset() is None:
        raise _Invalid("Must include a timezone (e.g. 'Z' or '+00:00').")
    if parsed < MIN_TIMESTAMP:
        raise _Invalid(f"Is before {MIN_TIMESTAMP:%Y-%m-%d}, the earliest accepted.")
    if parsed > now + MAX_FUTURE_SKEW:
        raise _Invalid("Is more than a day in the future.")
    return parsed.astimezone(UTC)  # in range by now, so this cannot overflow


def _content_parts(parts: list[Any]) -> str:
    """OpenAI/Anthropic-style content parts: the text parts, joined by newlines."""
    texts = []
    for index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            shown = repr(kind)[:40] if isinstance(part, dict) else "not an object"
            raise _Invalid(f"part {index} is {shown}: only text parts are accepted.")
        text = part.get("text")
        if not isinstance(text, str):
            raise _Invalid(f"part {index} needs a string 'text'.")
        texts.append(text)
    if not texts:
        raise _Invalid("needs at least one text part.")
    return "\n".join(texts)


def _messages(value: Any, *, max_bytes: int) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": _text(value, max_bytes=max_bytes)}]
    if not isinstance(value, list) or not value:
        raise _Invalid("Must be a string or a non-empty list of messages {role, content}.")
    messages = []
    for position, message in enumerate(value):
        if not isinstance(message, dict):
            raise _Invalid(f"Message {position} must be an object with role and content.")
        try:
            role = _ref(message.get("role"), max_length=MAX_ROLE_LENGTH)
        except _Invalid as error:
            raise _Invalid(f"Message {position} role: {error}") from None
        try:
            content = message.get("content")
            if isinstance(content, list):
                content = _content_parts(content)
            content = _text(content, max_bytes=max_bytes)
        except _Invalid as error:
            raise _Invalid(f"Message {position} content: {error}") from None
        messages.append({"role": role, "content": content})
    return messages


class _JsonInvalid(Exception):
    """A metadata value at fault; `path` is filled in on the way out of the recursion."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = []


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if value is TOO_DEEP:
        raise _Invalid(f"Is nested more than {MAX_METADATA_DEPTH} levels deep.")
    if not isinstance(value, dict):
        raise _Invalid("Must be an object.")
    budget = [MAX_METADATA_BYTES]
    try:
        clean = _json_value(value, MAX_METADATA_DEPTH, budget)
    except _JsonInvalid as error:
        where = "".join(f"[{json.dumps(step)[:40]}]" for step in error.path)
        raise _Invalid(f"{error.message} (at metadata{where}).") from None
    # The walk's count is a lower bound, at worst 24 times too low (a number counts 1, and
    # may take 24): measure exactly only what could be over the limit.
    if (MAX_METADATA_BYTES - budget[0]) * 24 > MAX_METADATA_BYTES:
        encoded = json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode()
        if len(encoded) > MAX_METADATA_BYTES:
            raise _Invalid(f"Must be at most {MAX_METADATA_BYTES} bytes as JSON.")
    return clean


def _json_value(value: Any, depth: int, budget: list[int]) -> Any:
    """`value` with its texts cleaned; raises _JsonInvalid for what cannot be stored.

    `budget` counts down a lower bound of the serialised size, so a huge value is refused
    without walking all of it.
    """
    if isinstance(value, str):
        budget[0] -= len(value) + 2
        if budget[0] < 0:
            raise _JsonInvalid(f"Is larger than {MAX_METADATA_BYTES} bytes as JSON")
        return clean_text(value)
    budget[0] -= 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -INT64 <= value < INT64:
            raise _JsonInvalid("Holds an integer beyond 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _JsonInvalid("Holds NaN, Infinity or a number beyond ±1.8e308")
        return value
    if value is TOO_DEEP or depth == 0:
        raise _JsonInvalid(f"Is nested more than {MAX_METADATA_DEPTH} levels deep")
    if budget[0] < 0:
        raise _JsonInvalid(f"Is larger than {MAX_METADATA_BYTES} bytes as JSON")
    if isinstance(value, dict):
        clean: dict[str, Any] = {}
        for key, item in value.items():
            try:
                clean[clean_text(key)] = _json_value(item, depth - 1, budget)
            except _JsonInvalid as error:
                error.path.insert(0, key)
                raise
            budget[0] -= len(key) + 3
        return clean
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_json_value(item, depth - 1, budget))
            except _JsonInvalid as error:
                error.path.insert(0, index)
                raise
        return items
    raise _JsonInvalid("Is not a JSON value")


def _dwell_ms(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_DWELL_MS  # false for NaN too
    ):
        raise _Invalid(f"Must be a number of milliseconds from 0 to {MAX_DWELL_MS} (24 h).")
    return value if isinstance(value, int) else round(value)


def _rating(value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)  # thumbs up / down
    if not isinstance(value, int | float) or not -MAX_RATING <= value <= MAX_RATING:
        raise _Invalid("Must be a number from -2^53 to 2^53, or true/false.")
    return value


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _Invalid(f"Must be one of: {', '.join(choices)}.")
    return value


def validate_event(raw: Any, *, max_text_bytes: int, now: datetime) -> ValidEvent:
    """A normalised event, or raises `EventInvalid` with one message per bad field."""
    if not isinstance(raw, dict):
        raise EventInvalid({"event": "Must be a JSON object."})
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {}

    def check(field: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            value = raw.get(field)
            if value is TOO_DEEP and field != "metadata":
                raise _Invalid("Is nested too deeply.")
            return fn(value, *args, **kwargs)
        except _Invalid as error:
            errors[field] = str(error)
            return None

    try:
        # The fields every event has, checked directly: as `check` would, for valid ones
        # (most), at a third of its cost; a field at fault is checked again below.
        get = raw.get
        client_id = _ref(get("id"))
        event_type = _choice(get("type"), EVENT_TYPES)
        timestamp = _timestamp(get("timestamp"), now)
        session_ref = _session_ref(get("session_id"))
        user_ref = _ref(get("user_id"), required=False) or ""
        generation_ref = "" if event_type == "session_outcome" else _ref(get("generation_id"))
    except _Invalid:
        client_id = check("id", _ref)
        event_type = check("type", _choice, EVENT_TYPES)
        timestamp = check("timestamp", _timestamp, now)
        session_ref = check("session_id", _session_ref)
        user_ref = check("user_id", _ref, required=False) or ""
        generation_ref = ""
        if event_type is not None and event_type != "session_outcome":
            generation_ref = check("generation_id", _ref) or ""

    if event_type == "generation":
        payload["input"] = check("input", _messages, max_bytes=max_text_bytes)
        payload["output"] = check("output", _text, max_bytes=max_text_bytes)
        payload["model"] = check("model", _ref, required=False, max_length=MAX_MODEL_LENGTH) or ""
        payload["replaces"] = check("replaces", _ref, required=False)
        payload["metadata"] = check("metadata", _metadata)
    elif event_type == "edit":
        payload["text"] = check("text", _text, max_bytes=max_text_bytes)
    elif event_type == "copy":
        text = check("text", _text, max_bytes=max_text_bytes, required=False)
        if text is not None:
            payload["text"] = text
    elif event_type == "view":
        payload["dwell_ms"] = check("dwell_ms", _dwell_ms)
    elif event_type == "rating":
        payload["value"] = check("value", _rating)
        comment = check("comment", _text, max_bytes=max_text_bytes, required=False)
        if comment is not None:
            payload["comment"] = comment
    elif event_type == "session_outcome":
        payload["outcome"] = check("outcome", _choice, OUTCOMES)
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
