"""Scheduling work after a commit: debounced (at most once per window) and never failing the
request that asked for it, and once per transaction however often it is asked for."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from contextlib import suppress

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)
# Per thread (each thread has its own database connection): key -> the pending callback.
_pending = threading.local()
# Per process: mark -> when its window ends (time.time()), for marks this process set or
# read, so that a busy process asks the cache once per window and mark rather than at every
# answer or ingestion batch (a round trip to Redis each).
_window_ends: dict[str, float] = {}
# A window is trusted until this many seconds before its end: the clocks of the machine
# that set the mark (whose task waits out the window) and of this one may differ.
WINDOW_MARGIN_SECONDS = 1.0
_WINDOWS_KEPT = 10_000  # marks remembered before the ended ones are dropped


def _window_remember(mark: str, ends: float, now: float) -> None:
    if len(_window_ends) >= _WINDOWS_KEPT:
        for old in [key for key, end in _window_ends.items() if end <= now]:
            _window_ends.pop(old, None)
    _window_ends[mark] = ends


def windows_forget() -> None:
    """Forget the windows this process knows of (tests that clear the cache call it)."""
    _window_ends.clear()


def schedule_debounced(*, mark: str, window: int, enqueue: Callable[[], object]) -> bool:
    """Call `enqueue` (which publishes a task) at most once per `window` seconds; True if it
    was called and succeeded.

    Contract:
    - Call it from `transaction.on_commit`, after the rows the task will read are committed.
      By then the request has succeeded and must answer so whatever happens here.
    - Debounce: the first call in a window sets `mark` in the cache for `window` seconds
      and enqueues; later calls inside the window do nothing. `enqueue` should publish with
      `countdown=window`, so the one task runs at the window's end and sees everything
      that arrived in it. `mark` is a cache key unique to the kind of work (one per task,
      or per task and object, e.g. per queue).
    - Never raises: when the cache or the broker is unreachable (Redis down) it logs a
      warning and returns False. Nothing is lost only because the work is found in the
      database by a periodic beat sweep: every caller must have one and name it.
    - If enqueueing fails after the mark was set, the mark is removed (best effort), so the
      next call tries again instead of waiting out the window.
    - The mark's value is when its window ends. A process that set or read it skips the
      cache until `WINDOW_MARGIN_SECONDS` before that end: the task enqueued with the mark
      runs after the window, so it reads whatever is committed before. One round trip per
      window and mark in each process, instead of one per call. (A mark read just before
      its process failed to enqueue is trusted too: the beat sweep finds that work, as it
      finds the work of a window whose scheduling failed.)
    """
    now = time.time()
    if _window_ends.get(mark, 0.0) - WINDOW_MARGIN_SECONDS > now:
        return False  # scheduled already in this window (known without asking the cache)
    ends = now + window
    try:
        if not cache.add(mark, ends, timeout=window):  # scheduled already in this window
            seen = cache.get(mark)
            if type(seen) is float and seen > now:  # set by another process, until then
                _window_remember(mark, min(seen, ends), now)
            return False
    except Exception:  # see the contract: never raise after commit
        logger.warning("Not scheduled (%s): the cache is unavailable", mark, exc_info=True)
        return False
    try:
        enqueue()
    except Exception:  # see the contract: never raise after commit
        logger.warning("Not scheduled (%s): the broker is unavailable", mark, exc_info=True)
        with suppress(Exception):  # best effort: the mark expires with its window anyway
            cache.delete(mark)
        return False
    _window_remember(mark, ends, now)
    return True


def schedule_task(
    task: Task, *, args: tuple[object, ...] = (), mark: str, window: int, eager_raises: bool
) -> bool:
    """Run Celery `task` soon: debounced by `mark` over `window` seconds (`schedule_debounced`,
    never raising), or at once in in-process mode (CELERY_TASK_ALWAYS_EAGER). `apply` runs it
    here whatever Celery's own configuration says, so the decision rests on the one setting.
    In-process errors propagate when `eager_raises`, else they are logged and False returned
    (the caller's beat sweep retries). True if the task ran or was enqueued."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            task.apply(args=args, throw=True)
        except Exception:
            if eager_raises:
                raise
            logger.warning("%s%s failed in-process", task.name, args, exc_info=True)
            return False
        return True
    return schedule_debounced(
        mark=mark,
        window=window,
        enqueue=lambda: task.apply_async(args=args, countdown=window),
    )


def on_commit_once(key: Hashable, func: Callable[[], object]) -> None:
    """Run `func` when the current transaction commits, once per `key` however many times it
    is asked for inside that transaction (a bulk import of answers to one queue is one
    recomputation). Outside a transaction it runs at once, as `transaction.on_commit` does.

    Only public API: the pending callback is remembered by a weak reference. A rolled-back
    transaction (or savepoint) drops its callbacks, the reference dies with them, and the next
    request registers anew instead of waiting for a commit that will not come.
    """

    pending: dict[Hashable, weakref.ref[Callable[[], None]]] = _pending.__dict__.setdefault(
        "callbacks", {}
    )
    registered = pending.get(key)
    if registered is not None and registered() is not None:
        return

    def run() -> None:
        if pending.get(key) is reference:
            del pending[key]
        func()

    reference = weakref.ref(run)
    pending[key] = reference
    transaction.on_commit(run)
