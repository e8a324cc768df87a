"""CORS for the ingestion endpoint only, for pages that send events with a publishable key.

A preflight (`OPTIONS /api/v1/events` with Access-Control-Request-Method) carries no key,
so it can only ask whether some active publishable key lists the page's origin: then it
is answered 204 with the allow headers, otherwise 403 with none (the browser blocks the
request). The origins are cached for ORIGINS_CACHE_SECONDS (api_key_create and
api_keys_revoke drop the entry).

The real request is judged by tenancy.authentication: a publishable key needs its own
list to hold the Origin. Its answer, whatever the status (200, 207, 400, 413, 429), carries
Access-Control-Allow-Origin when that key lists the origin; an answer given before any key
was accepted (401, 403) carries it when a preflight would allow the origin, so the page
can read why it was refused. A request with a secret key gets no CORS headers: secret keys
belong on servers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers

from core.ratelimit import CACHE_UNAVAILABLE_ERRORS
from tenancy.models import PUBLISHABLE_ORIGINS_CACHE_KEY, ApiKey

EVENTS_PATH = "/api/v1/events"
ORIGINS_CACHE_SECONDS = 30
ALLOW_METHODS = "POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type"


def publishable_origins() -> frozenset[str]:
    """Every origin listed on an active publishable key, from the cache when it has them.

    The cache only saves a query per preflight: when it cannot be reached, the database
    answers (the answer is the same, so nothing fails open or closed)."""
    try:
        cached = cache.get(PUBLISHABLE_ORIGINS_CACHE_KEY)
    except CACHE_UNAVAILABLE_ERRORS:
        cached = None
    if cached is not None:
        return frozenset(cached)
    origins = frozenset(
        origin
        for listed in ApiKey.objects.filter(
            kind=ApiKey.Kind.PUBLISHABLE, revoked_at__isnull=True
        ).values_list("allowed_origins", flat=True)
        for origin in listed
    )
    with contextlib.suppress(*CACHE_UNAVAILABLE_ERRORS):
        cache.set(PUBLISHABLE_ORIGINS_CACHE_KEY, sorted(origins), ORIGINS_CACHE_SECONDS)
    return origins


def _allow(response: HttpResponse, origin: str) -> None:
    response["Access-Control-Allow-Origin"] = origin
    # So a page can read how long to wait after a 429 or 503.
    response["Access-Control-Expose-Headers"] = "Retry-After"


class EventsCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin")
        if request.path != EVENTS_PATH or not origin:
            return self.get_response(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = self.preflight(origin)
        else:
            response = self.get_response(request)
            if self.readable_by(request, origin):
                _allow(response, origin)
        patch_vary_headers(response, ["Origin"])
        return response

    @staticmethod
    def readable_by(request: HttpRequest, origin: str) -> bool:
        key = getattr(request, "auth", None)  # set by DRF once a key authenticated
        if isinstance(key, ApiKey):
            return key.is_publishable and origin in key.allowed_origins
        try:
            return origin in publishable_origins()
        except DatabaseError:
            return False  # the answer is already a 503; it stays one, unreadable

    def preflight(self, origin: str) -> HttpResponse:
        if origin not in publishable_origins():
            message = "No publishable key allows this origin."
            return JsonResponse({"detail": message, "errors": {"Origin": message}}, status=403)
        response = HttpResponse(status=204)
        _allow(response, origin)
        response["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response["Access-Control-Max-Age"] = str(settings.GLEANER_CORS_MAX_AGE_SECONDS)
        return response
