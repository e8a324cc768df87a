"""Database work run meanwhile on a connection of its own: exports' aggregates; the
agreement gate's item table, counter recount and every other chunk of outcomes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connection


def background_possible() -> bool:
    """Whether `in_background` runs its work meanwhile: where another connection sees the
    same rows (PostgreSQL, outside a transaction; SQLite has one writer and tests' rows
    are in a transaction of their own)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def in_background[T](compute: Callable[[], T]) -> Future[T]:
    """`compute` (database work in transactions of its own, if any) on a thread and
    connection of its own where that is possible (`background_possible`); else run now,
    done at once. Either way its result, or its error, comes from the future's
    `result()`."""
    if not background_possible():
        now: Future[T] = Future()
        try:
            now.set_result(compute())
        except Exception as error:  # noqa: BLE001 - raised again by .result()
            now.set_exception(error)
        return now

    def run() -> T:
        try:
            return compute()
        finally:
            connection.close()  # this thread's own connection

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")
    future = executor.submit(run)
    executor.shutdown(wait=False)
    return future
