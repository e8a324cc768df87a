"""The asyncio client: the same event methods, a task that sends, and the same transport
run in a thread (`asyncio.to_thread`), so nothing beyond the standard library is needed."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import time
from collections import deque
from itertools import islice

from gleaner_client import _transport
from gleaner_client._delivery import ClientBase, logger
from gleaner_client._events import QueuedEvent, Stats


class AsyncGleaner(ClientBase):
    """`Gleaner` for asyncio applications. Event methods are plain (not coroutines): they
    queue without blocking and return the event id. Call them from the event loop's thread.

    A task on the running loop sends batches (started by the first event); `await flush()`
    waits for what was queued before it; `await aclose()` sends the rest and stops, and is
    what a service should call on shutdown (or use `async with`). Events still queued when
    the interpreter exits without `aclose()` are sent then, synchronously.
    """

    def _start(self) -> None:
        self._queue: deque[QueuedEvent] = deque()  # in flight events stay until settled
        self._enqueued = 0
        self._finished = 0
        self._flush_to = 0
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        atexit.register(self._at_exit)

    def _enqueue(self, event: QueuedEvent) -> None:
        if self._closed or len(self._queue) >= self._max_queue:
            self._counters.add(dropped=1)
            return
        self._queue.append(event)
        self._enqueued += 1
        self._ensure_task()
        if len(self._queue) >= self._batch_size:
            self._wakeup.set()

    def _ensure_task(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop here: the events wait for flush() or the next event in one
        self._task = asyncio.create_task(self._run(), name="gleaner-client-sender")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event queued before this call is sent or given up (retries
        included); False if `timeout` seconds passed first."""
        target = self._enqueued
        self._flush_to = max(self._flush_to, target)
        self._ensure_task()
        self._wakeup.set()
        try:
            async with self._progress:
                await asyncio.wait_for(
                    self._progress.wait_for(lambda: self._finished >= target), timeout
                )
        except asyncio.TimeoutError:
            return False
        return True

    async def aclose(self, timeout: float | None = None) -> None:
        """Send what is queued (waiting at most `timeout` seconds, retries included), then
        stop. Events still unsent after that are dropped and counted; later events too."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        self._ensure_task()
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                self._task.cancel()
        self._drop_queued()

    def stats(self) -> Stats:
        return self._counters.snapshot(len(self._queue))

    async def __aenter__(self) -> AsyncGleaner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _drop_queued(self) -> None:
        self._counters.add(dropped=len(self._queue))
        self._finished += len(self._queue)
        self._queue.clear()

    def _due(self) -> float | None:
        """Seconds until a batch is due (0: now); None when nothing is queued."""
        if not self._queue:
            return None
        if len(self._queue) >= self._batch_size or self._closed or self._flush_to > self._finished:
            return 0.0
        return max(0.0, self._queue[0].at + self._flush_interval - time.monotonic())

    async def _run(self) -> None:
        while True:
            due = self._due()
            if due is None and self._closed:
                return
            if due != 0.0:
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), due)
                continue
            head = list(islice(self._queue, self._batch_size))
            batch = head[: _transport.take_batch(head, self._batch_size)]
            try:
                await self._deliver(batch)
            except Exception:  # a bug here must not strand flush() callers
                logger.exception("gleaner_client: sending a batch failed")
                self._counters.add(dropped=len(batch))
            for _ in batch:
                self._queue.popleft()
            self._finished += len(batch)
            async with self._progress:
                self._progress.notify_all()

    async def _deliver(self, batch: list[QueuedEvent]) -> None:
        body = _transport.encode_batch(batch)
        retries = 0
        while True:
            answer = await asyncio.to_thread(self._delivery.attempt, body)
            delay = self._delivery.settle(batch, answer, retries)
            if delay is None:
                return
            await asyncio.sleep(delay)
            retries += 1
            self._counters.add(retries=1)

    def _at_exit(self) -> None:
        """The loop is gone: send what is left from this thread, as the thread client does."""
        deadline = time.monotonic() + self._shutdown_timeout

        def wait(seconds: float) -> bool:
            if time.monotonic() + seconds > deadline:
                return True
            time.sleep(seconds)
            return False

        while self._queue and time.monotonic() < deadline:
            head = list(islice(self._queue, self._batch_size))
            batch = head[: _transport.take_batch(head, self._batch_size)]
            self._delivery.deliver_blocking(batch, wait)
            for _ in batch:
                self._queue.popleft()
            self._finished += len(batch)
        self._drop_queued()
