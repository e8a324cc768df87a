"""One HTTP request per batch, and what its answer means for the batch: pure functions
beside the code that sends, so both clients decide the same way."""

from __future__ import annotations

import email.utils
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gleaner_client._events import EventError, QueuedEvent

EVENTS_PATH = "/api/v1/events"
MAX_BATCH_EVENTS = 1000  # the server's GLEANER_MAX_EVENTS_PER_REQUEST default
MAX_BATCH_BYTES = 4 * 1024 * 1024  # under the server's 5 MB, with room for one more event
USER_AGENT = "gleaner-client-python/0.1"
MAX_RETRY_AFTER = 600.0


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status and body, or `status` 0 for no answer."""

    status: int
    body: bytes = b""
    retry_after: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    """What to do with a batch after an answer."""

    action: Literal["done", "retry", "fail"]
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    event_errors: list[EventError] = field(default_factory=list)
    message: str = ""


def endpoint(url: str) -> str:
    """The events endpoint of a Gleaner at `url` (its base URL, or the endpoint itself)."""
    url = url.rstrip("/")
    return url if url.endswith(EVENTS_PATH) else url + EVENTS_PATH


def encode_batch(events: Sequence[QueuedEvent]) -> bytes:
    return b'{"events":[' + b",".join(event.json for event in events) + b"]}"


def take_batch(events: Sequence[QueuedEvent], limit: int) -> int:
    """How many of the first `events` go in the next request: at most `limit` events and
    MAX_BATCH_BYTES of body, and at least one (the server judges an oversized event)."""
    size = 0
    for count, event in enumerate(events[:limit]):
        size += len(event.json) + 1
        if size > MAX_BATCH_BYTES and count:
            return count
    return min(len(events), limit)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 301/302 of a POST as a GET without the body (then 405): a
    redirect is answered as what it is, so the error names it (http:// to https://?)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, key: str, body: bytes, *, timeout: float) -> Answer:
    """POST `body` to the events endpoint; never raises for HTTP or network failures."""
    request = urllib.request.Request(  # noqa: S310 - the URL is the caller's Gleaner
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        },
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as error:
        with error:
            body = error.read()
        retry_after = parse_retry_after(error.headers.get("Retry-After"))
        reason = f"HTTP {error.code}"
        if 300 <= error.code < 400:
            reason += f", a redirect to {error.headers.get('Location')}: use that URL"
            body = b""
        return Answer(error.code, body, retry_after, reason)
    except Exception as error:  # refused, reset, timeout, TLS, a broken answer: no answer
        return Answer(0, reason=f"{type(error).__name__}: {error}")


def judge(answer: Answer, events: Sequence[QueuedEvent]) -> Verdict:
    """Retry network failures, 429 and 5xx; never a 4xx, never an answered 200/207."""
    if answer.status in (200, 207):
        try:
            data: Any = json.loads(answer.body)
            accepted, duplicates = int(data["accepted"]), int(data["duplicates"])
            rejected, errors = int(data["rejected"]), data.get("errors") or []
        except (ValueError, KeyError, TypeError):
            # Not Gleaner's answer (a proxy?): what was stored is unknown, and sending the
            # batch again is safe, as its ids make every stored event a duplicate.
            return Verdict("retry", message=f"HTTP {answer.status} without Gleaner's counts")
        return Verdict(
            "done",
            accepted=accepted,
            duplicates=duplicates,
            rejected=rejected,
            event_errors=[_event_error(error, events) for error in errors],
        )
    if answer.status == 0:
        return Verdict("retry", message=answer.reason or "no answer")
    if answer.status == 429 or answer.status >= 500:
        return Verdict("retry", message=f"HTTP {answer.status}{_detail(answer.body)}")
    return Verdict("fail", message=f"{answer.reason or answer.status}{_detail(answer.body)}")


def _event_error(error: Mapping[str, Any], events: Sequence[QueuedEvent]) -> EventError:
    index = error.get("index")
    event_id = error.get("id")
    if isinstance(index, int) and 0 <= index < len(events):
        event_id = events[index].id  # the server cuts and repairs what it echoes
    return EventError(
        id=event_id if isinstance(event_id, str) else None,
        index=index if isinstance(index, int) else -1,
        errors={str(k): str(v) for k, v in dict(error.get("errors") or {}).items()},
    )


def _detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict) and data.get("errors"):
        return f": {json.dumps(data['errors'], ensure_ascii=False)[:500]}"
    if isinstance(data, dict) and data.get("detail"):
        return f": {str(data['detail'])[:500]}"
    return ""


def backoff(attempt: int, retry_after: float | None, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): exponential backoff with
    full jitter, or at least the server's Retry-After when it gave one."""
    jittered = random.uniform(0, min(cap, base * 2 ** (attempt - 1)))  # noqa: S311 - jitter
    if retry_after is not None:  # a date far ahead is a broken clock: wait 10 minutes at most
        return max(min(retry_after, MAX_RETRY_AFTER), jittered)
    return jittered
