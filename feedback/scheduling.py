"""Debounced task scheduling that never fails the request that asked for it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress

from django.core.cache import cache

logger = logging.getLogger(__name__)


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
    """
    try:
        if not cache.add(mark, 1, timeout=window):
            return False  # scheduled already in this window
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
    return True
