"""The thread-based client: events go into a bounded queue and a daemon thread sends them."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import deque
from itertools import islice

from gleaner_client import _transport
from gleaner_client._delivery import ClientBase, logger
from gleaner_client._events import QueuedEvent, Stats


class Gleaner(ClientBase):
    """Sends events to Gleaner in the background.

    Event methods never block and never raise for delivery problems: an event is queued
    (or, with the queue full, dropped and counted) and its id returned. A daemon thread
    sends a batch when `batch_size` events wait, when the oldest has waited
    `flush_interval` seconds, on `flush()`, on `close()` and at interpreter exit.
    Network failures, 429 and 5xx are retried with exponential backoff and full jitter
    (at least Retry-After); a batch is retried unchanged, so the server stores each event
    once. Refusals (207 per event, 4xx for a batch) go to `on_error`, or to the
    "gleaner_client" logger, and are not retried.

    Thread-safe: one client is meant to be shared by the whole process.
    """

    def _start(self) -> None:
        self._reset()
        atexit.register(self._at_exit)

    def _reset(self) -> None:
        """The queue and its sender, fresh (at start, and in a forked child, where the
        parent's thread does not exist and the parent sends its own queue)."""
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[QueuedEvent] = deque()  # in flight events stay until settled
        self._enqueued = 0  # events ever queued
        self._finished = 0  # of those, settled (queue order is send order)
        self._flush_to = 0  # a flush() waits for the events before this count
        self._abandon = threading.Event()
        self._thread: threading.Thread | None = None

    def _enqueue(self, event: QueuedEvent) -> None:
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            if self._closed or len(self._queue) >= self._max_queue:
                self._counters.add(dropped=1)
                return
            self._queue.append(event)
            self._enqueued += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="gleaner-client-sender", daemon=True
                )
                self._thread.start()
            if len(self._queue) >= self._batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every event queued before this call is sent or given up (retries
        included); False if `timeout` seconds passed first."""
        with self._cond:
            target = self._enqueued
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued (waiting at most `timeout` seconds, retries included), then
        stop. Events still unsent after that are dropped and counted; later events too."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            done = self._cond.wait_for(lambda: self._finished >= self._enqueued, timeout)
        if not done:
            self._abandon.set()  # stop retrying: the sender drops what is left
        if self._thread is not None:
            self._thread.join(self._delivery.timeout + 1)
        atexit.unregister(self._at_exit)

    def stats(self) -> Stats:
        with self._cond:
            queued = len(self._queue)
        return self._counters.snapshot(queued)

    def __enter__(self) -> Gleaner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _at_exit(self) -> None:
        if self._pid == os.getpid():
            self.close(self._shutdown_timeout)

    def _next_batch(self) -> list[QueuedEvent] | None:
        """Wait for a batch that is due; None when the client closed and all is sent."""
        with self._cond:
            while True:
                if self._abandon.is_set():
                    self._counters.add(dropped=len(self._queue))
                    self._finished += len(self._queue)
                    self._queue.clear()
                    self._cond.notify_all()
                    return None
                if not self._queue:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                due = self._queue[0].at + self._flush_interval
                now = time.monotonic()
                if (
                    len(self._queue) >= self._batch_size
                    or self._closed
                    or self._flush_to > self._finished
                    or now >= due
                ):
                    head = list(islice(self._queue, self._batch_size))
                    return head[: _transport.take_batch(head, self._batch_size)]
                self._cond.wait(due - now)

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._delivery.deliver_blocking(batch, self._abandon.wait)
            except Exception:  # a bug here must not strand flush() callers
                logger.exception("gleaner_client: sending a batch failed")
                self._counters.add(dropped=len(batch))
            with self._cond:
                for _ in batch:
                    self._queue.popleft()
                self._finished += len(batch)
                self._cond.notify_all()
