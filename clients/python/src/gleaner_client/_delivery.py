"""Delivering one batch: attempts, retries and what each answer means for the counters.
Both clients use it; they differ only in how they wait between attempts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from gleaner_client import _transport
from gleaner_client._events import EventMethods, GleanerError, QueuedEvent, _Counters

logger = logging.getLogger("gleaner_client")

ErrorCallback = Callable[[GleanerError], object]


class Delivery:
    def __init__(
        self,
        *,
        key: str,
        url: str,
        timeout: float,
        max_retries: int,
        backoff_base: float,
        max_backoff: float,
        on_error: ErrorCallback | None,
        counters: _Counters,
    ) -> None:
        if not isinstance(key, str) or not key.strip():
            raise ValueError("key: a Gleaner project key (glk_...) is required.")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: must start with http:// or https:// ({url!r}).")
        if max_retries < 0 or timeout <= 0 or backoff_base < 0 or max_backoff < 0:
            raise ValueError("max_retries, timeout, backoff_base and max_backoff must be >= 0.")
        self.key = key.strip()
        self.endpoint = _transport.endpoint(url)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.on_error = on_error
        self.counters = counters

    def attempt(self, body: bytes) -> _transport.Answer:
        self.counters.add(requests=1)
        return _transport.post(self.endpoint, self.key, body, timeout=self.timeout)

    def settle(
        self, batch: Sequence[QueuedEvent], answer: _transport.Answer, retries: int
    ) -> float | None:
        """Count and report the batch's fate after `answer`, which followed `retries`
        retries; or, when it is to be sent again, the seconds to wait first."""
        verdict = _transport.judge(answer, batch)
        if verdict.action == "done":
            self.counters.add(
                sent=verdict.accepted, duplicate=verdict.duplicates, rejected=verdict.rejected
            )
            if verdict.event_errors:
                self.report(
                    GleanerError(
                        "rejected",
                        f"Gleaner refused {len(verdict.event_errors)} of {len(batch)} events",
                        status=answer.status,
                        event_ids=[e.id for e in verdict.event_errors if e.id is not None],
                        event_errors=verdict.event_errors,
                    )
                )
            return None
        if verdict.action == "fail":
            self.counters.add(rejected=len(batch))
            self.report(
                GleanerError(
                    "request",
                    f"Gleaner refused a batch of {len(batch)} events: {verdict.message}",
                    status=answer.status,
                    event_ids=[event.id for event in batch],
                )
            )
            return None
        if retries >= self.max_retries:
            why = f"{retries + 1} attempts failed, the last: {verdict.message}"
            self.give_up(batch, why, status=answer.status or None)
            return None
        logger.debug("gleaner_client: retrying a batch of %d: %s", len(batch), verdict.message)
        return _transport.backoff(
            retries + 1, answer.retry_after, base=self.backoff_base, cap=self.max_backoff
        )

    def give_up(self, batch: Sequence[QueuedEvent], why: str, *, status: int | None = None) -> None:
        self.counters.add(dropped=len(batch))
        self.report(
            GleanerError(
                "gave_up",
                f"Dropped a batch of {len(batch)} events: {why}",
                status=status,
                event_ids=[event.id for event in batch],
            )
        )

    def report(self, error: GleanerError) -> None:
        if self.on_error is None:
            logger.warning("gleaner_client: %s", error.message)
            return
        try:
            self.on_error(error)
        except Exception:  # the sender must outlive a broken callback
            logger.exception("gleaner_client: on_error raised")

    def deliver_blocking(self, batch: Sequence[QueuedEvent], wait: Callable[[float], bool]) -> None:
        """Send until settled; `wait(seconds)` returns True when the client stops waiting."""
        body = _transport.encode_batch(batch)
        retries = 0
        while (delay := self.settle(batch, self.attempt(body), retries)) is not None:
            if wait(delay):
                self.give_up(batch, "the client closed while retrying")
                return
            retries += 1
            self.counters.add(retries=1)


def check_options(batch_size: int, flush_interval: float, max_queue: int) -> None:
    if not 1 <= batch_size <= _transport.MAX_BATCH_EVENTS:
        raise ValueError(f"batch_size: from 1 to {_transport.MAX_BATCH_EVENTS} ({batch_size}).")
    if flush_interval <= 0:
        raise ValueError(f"flush_interval: must be > 0 seconds ({flush_interval}).")
    if max_queue < 1:
        raise ValueError(f"max_queue: must be >= 1 ({max_queue}).")


class ClientBase(EventMethods):
    """The options and the delivery both clients share; each adds its queue and sender
    in `_start()`."""

    def __init__(
        self,
        key: str,
        url: str,
        *,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        max_retries: int = 6,
        timeout: float = 10.0,
        backoff_base: float = 0.5,
        max_backoff: float = 30.0,
        shutdown_timeout: float = 10.0,
        on_error: ErrorCallback | None = None,
    ) -> None:
        check_options(batch_size, flush_interval, max_queue)
        self._counters = _Counters()
        self._delivery = Delivery(
            key=key,
            url=url,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            max_backoff=max_backoff,
            on_error=on_error,
            counters=self._counters,
        )
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._shutdown_timeout = shutdown_timeout
        self._closed = False
        self._start()

    def _start(self) -> None:
        raise NotImplementedError
