"""Per-key request rate limit: a fixed one-minute window counted in the shared cache."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from feedback.models import ApiKey

WINDOW_SECONDS = 60


def window_hit(bucket: str, limit: int, now: float | None = None) -> tuple[bool, int]:
    """Count one request in `bucket`'s current window: (allowed, seconds until it resets).

    `cache.add` then `cache.incr` are atomic on Redis, so concurrent web processes agree.
    """
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = f"ratelimit:{bucket}:{window}"
    cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=WINDOW_SECONDS + 5)
        count = 1
    reset_in = WINDOW_SECONDS - int(now % WINDOW_SECONDS)
    return count <= limit, reset_in


class IngestKeyThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: object) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True
        limit = key.rate_limit_per_minute or settings.GLEANER_INGEST_RATE_PER_MINUTE
        allowed, self._wait = window_hit(f"key:{key.hashed_key[:16]}", limit)
        return allowed

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
