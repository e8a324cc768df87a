"""What both clients share: the typed event methods, the counters and the error type."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from gleaner_client._ids import new_event_id

Message = Mapping[str, Any]  # {"role": ..., "content": str or a list of text parts}
Prompt = str | Sequence[Message]
Outcome = Literal["completed", "abandoned"]
Timestamp = datetime | str | None


@dataclass(frozen=True)
class Stats:
    """Event counts since the client was made. Every event taken into the queue ends in
    exactly one of sent, duplicate, rejected or dropped, or is still `queued`."""

    sent: int = 0  # stored by the server (its "accepted")
    duplicate: int = 0  # the server had the id already: stored earlier, e.g. by a retry
    rejected: int = 0  # refused by the server (207 per event, or a 4xx for the whole batch)
    dropped: int = 0  # never delivered: the queue was full, the client closed, or retries ran out
    queued: int = 0  # waiting to be sent, or in flight
    requests: int = 0  # HTTP requests made, retries included
    retries: int = 0  # of those, repeats of a batch after a failure


@dataclass(frozen=True)
class EventError:
    """One event the server refused: `errors` maps each bad field to its message."""

    id: str | None
    index: int
    errors: dict[str, str]


class GleanerError(Exception):
    """Given to `on_error`. `kind` says what happened to the events named by `event_ids`:

    - "rejected": the server refused some events of a batch (207); `event_errors` has one
      entry per refused event, naming the fields. The other events were stored.
    - "request": the server refused the whole batch with a 4xx other than 429 (400 bad
      body, 401 bad key, 413 too large); nothing was stored and nothing is retried.
    - "gave_up": every attempt failed (network, 429, 5xx): the events are dropped;
      `status` is the last attempt's (None when no answer came).
    """

    def __init__(
        self,
        kind: Literal["rejected", "request", "gave_up"],
        message: str,
        *,
        status: int | None = None,
        event_ids: Sequence[str] = (),
        event_errors: Sequence[EventError] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.event_ids = list(event_ids)
        self.event_errors = list(event_errors)


@dataclass
class _Counters:
    """Mutable counters behind `Stats`, shared by the caller's threads and the sender."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    duplicate: int = 0
    rejected: int = 0
    dropped: int = 0
    requests: int = 0
    retries: int = 0

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def snapshot(self, queued: int) -> Stats:
        with self.lock:
            return Stats(
                sent=self.sent,
                duplicate=self.duplicate,
                rejected=self.rejected,
                dropped=self.dropped,
                queued=queued,
                requests=self.requests,
                retries=self.retries,
            )


def format_timestamp(value: Timestamp) -> str:
    """ISO 8601 in UTC with a "Z" and milliseconds; now when `value` is None."""
    if value is None:
        value = datetime.now(timezone.utc)
    elif isinstance(value, str):
        return value
    elif value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (e.g. datetime.now(timezone.utc)).")
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class QueuedEvent:
    """An event as queued: its id and its JSON, encoded once, when it was made."""

    id: str
    json: bytes
    at: float  # time.monotonic() when it was queued: it waits at most flush_interval


class EventMethods:
    """One typed method per event type. Each builds the event, queues it without blocking
    and returns its id (made here unless `id` is given); subclasses provide `_enqueue`."""

    def _enqueue(self, event: QueuedEvent) -> None:
        raise NotImplementedError

    def _event(
        self,
        type_: str,
        *,
        session_id: str,
        generation_id: str | None,
        user_id: str | None,
        timestamp: Timestamp,
        id: str | None,
        **fields: Any,
    ) -> str:
        event_id = id or new_event_id()
        data: dict[str, Any] = {
            "id": event_id,
            "type": type_,
            "timestamp": format_timestamp(timestamp),
            "session_id": session_id,
        }
        if generation_id is not None:
            data["generation_id"] = generation_id
        if user_id is not None:
            data["user_id"] = user_id
        data.update((name, value) for name, value in fields.items() if value is not None)
        # Encoded now: a value that is not JSON fails here, in the caller's code, and later
        # changes to the caller's objects do not change what is sent.
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        self._enqueue(QueuedEvent(event_id, encoded, time.monotonic()))
        return event_id

    def generation(
        self,
        *,
        session_id: str,
        generation_id: str,
        input: Prompt,
        output: str,
        model: str | None = None,
        replaces: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """An answer shown to the user. `input` is the prompt: a string or chat messages
        `{"role", "content"}`; `replaces` is the generation this one regenerated."""
        return self._event(
            "generation",
            session_id=session_id,
            generation_id=generation_id,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
            input=input if isinstance(input, str) else [dict(m) for m in input],
            output=output,
            model=model,
            replaces=replaces,
            metadata=dict(metadata) if metadata is not None else None,
        )

    def edit(
        self,
        *,
        session_id: str,
        generation_id: str,
        text: str,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """The user edited the answer; `text` is the whole text after the edit."""
        return self._event(
            "edit",
            session_id=session_id,
            generation_id=generation_id,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
            text=text,
        )

    def regenerate(
        self,
        *,
        session_id: str,
        generation_id: str,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """The user asked for another answer instead of `generation_id`."""
        return self._event(
            "regenerate",
            session_id=session_id,
            generation_id=generation_id,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
        )

    def copy(
        self,
        *,
        session_id: str,
        generation_id: str,
        text: str | None = None,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """The user copied the answer, or the part of it in `text`."""
        return self._event(
            "copy",
            session_id=session_id,
            generation_id=generation_id,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
            text=text,
        )

    def share(
        self,
        *,
        session_id: str,
        generation_id: str,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """The user shared the answer."""
        return self._event(
            "share",
            session_id=session_id,
            generation_id=generation_id,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
        )

    def view(
        self,
        *,
        session_id: str,
        generation_id: str,
        dwell_ms: float,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """The answer was on screen for `dwell_ms` milliseconds (0 to 24 h)."""
        return self._event(
            "view",
            session_id=session_id,
            generation_id=generation_id,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
            dwell_ms=dwell_ms,
        )

    def rating(
        self,
        *,
        session_id: str,
        generation_id: str,
        value: float | bool,
        comment: str | None = None,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """An explicit rating: a number on the product's scale, or True / False for
        thumbs up / down."""
        return self._event(
            "rating",
            session_id=session_id,
            generation_id=generation_id,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
            value=value,
            comment=comment,
        )

    def session_outcome(
        self,
        *,
        session_id: str,
        outcome: Outcome,
        signal: str | None = None,
        user_id: str | None = None,
        timestamp: Timestamp = None,
        id: str | None = None,
    ) -> str:
        """How the session ended ("completed" or "abandoned"); `signal` says what showed it."""
        return self._event(
            "session_outcome",
            session_id=session_id,
            generation_id=None,
            user_id=user_id,
            timestamp=timestamp,
            id=id,
            outcome=outcome,
            signal=signal,
        )
