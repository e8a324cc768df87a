"""Request and failure counters in fixed windows of the shared cache.

Ingestion keys get a per-minute request rate; logins and API credentials get a count of
failures per window (tenancy/authentication.py). When the cache cannot be reached the
limiter cannot tell an allowed request from a flood, so it fails closed: 503 with
Retry-After, before anything is read or stored.
"""

from __future__ import annotations

import time

import redis.exceptions
from django.core.cache import cache
from rest_framework import exceptions, status

WINDOW_SECONDS = 60
# Seconds a client is asked to wait when a service we depend on is down: long enough not to
# hammer it, short enough that a brief outage costs a client one retry.
RETRY_AFTER_SECONDS = 10
# What the cache raises when Redis is down or does not answer in time.
CACHE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class ServiceUnavailable(exceptions.APIException):
    """503 + Retry-After (DRF's handler sends `wait` as Retry-After)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service Gleaner depends on is unavailable; nothing was stored. Retry later."
    default_code = "service_unavailable"
    wait = RETRY_AFTER_SECONDS


def _window(bucket: str, now: float, window_seconds: int) -> tuple[str, int]:
    window = int(now // window_seconds)
    return f"ratelimit:{bucket}:{window_seconds}:{window}", window_seconds - int(
        now % window_seconds
    )


def window_hit(
    bucket: str, limit: int, now: float | None = None, window_seconds: int = WINDOW_SECONDS
) -> tuple[bool, int]:
    """Count one hit in `bucket`'s current window: (still within `limit`, seconds to reset).

    `cache.add` then `cache.incr` are atomic on Redis, so concurrent web processes agree.
    Raises one of CACHE_UNAVAILABLE_ERRORS when the cache is down.
    """
    now = time.time() if now is None else now
    key, reset_in = _window(bucket, now, window_seconds)
    cache.add(key, 0, timeout=window_seconds + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds + 5)
        count = 1
    return count <= limit, reset_in


def window_count(
    bucket: str, now: float | None = None, window_seconds: int = WINDOW_SECONDS
) -> tuple[int, int]:
    """Hits so far in `bucket`'s current window, without counting one: (count, seconds to reset)."""
    now = time.time() if now is None else now
    key, reset_in = _window(bucket, now, window_seconds)
    return int(cache.get(key) or 0), reset_in
