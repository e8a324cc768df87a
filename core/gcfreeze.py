"""Long-lived processes (web workers, Celery workers) keep out of the garbage collector's
sight what they made while warming up.

What Django, the apps and their libraries make at import and on the first requests or
tasks (~110-150k objects) lives as long as the process, and a full collection walks all of
it: 54-204 ms with every thread of the process stopped (bench/claims.py saw twelve such
pauses across three gunicorn workers in a 2.5-minute run; derivation spent 3.6% of its time
in them). Frozen (`gc.freeze`), it is skipped, and a full collection walks only what later
work left, in a few ms. Before each freeze a collection frees what is garbage already, so
only live objects are frozen; the two collections are the process's last long pauses.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable


class WarmUpFreezer:
    """Counts units of work (requests, tasks) done in this process and, after the ones
    numbered `at`, collects and then freezes. Safe from threads: the count is taken with
    next(), which the GIL makes atomic. A copy made by fork counts on from the parent's
    count, so a parent that did no work leaves each child to warm up on its own."""

    def __init__(self, at: Iterable[int]) -> None:
        self.at = frozenset(at)
        self.done = itertools.count(1)

    def tick(self) -> bool:
        """One unit of work done; whether this one froze."""
        if next(self.done) not in self.at:
            return False
        gc.collect()
        gc.freeze()
        return True
