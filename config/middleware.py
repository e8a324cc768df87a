"""Site-wide response policy: 503 + Retry-After when a service is down; Permissions-Policy.

An outage of Redis or PostgreSQL is not a bug in the request: the client should retry, and
a 503 with Retry-After says so. Only errors that mean "could not reach the service" are
answered this way; any other error stays a 500, so a 503 never hides a bug. A failure
raised by an on-commit hook also stays a 500: the transaction was committed, and a 503
would tell the client nothing was stored.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable
from types import TracebackType

import psycopg
import psycopg_pool
from django import db
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from core.ratelimit import CACHE_UNAVAILABLE_ERRORS, RETRY_AFTER_SECONDS

logger = logging.getLogger(__name__)

# SQLSTATEs of a server that cannot take us: connection exceptions (class 08), too many
# connections, and shutting down / starting up.
_UNAVAILABLE_SQLSTATES = {"53300", "57P01", "57P02", "57P03"}
_SQLITE_UNAVAILABLE = ("unable to open database file", "database is locked")


def _after_commit(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if code.co_name in ("run_and_clear_commit_hooks", "on_commit") and (
            "django/db" in code.co_filename.replace("\\", "/")
        ):
            return True
        traceback = traceback.tb_next
    return False


def unavailable_service(error: BaseException) -> str | None:
    """'cache' or 'database' when `error` means that service could not be reached, else None."""
    if _after_commit(error.__traceback__):
        return None
    if isinstance(error, CACHE_UNAVAILABLE_ERRORS):
        return "cache"
    if not isinstance(error, db.OperationalError | db.InterfaceError):
        return None
    cause = error.__cause__
    if isinstance(cause, psycopg_pool.PoolTimeout):
        return "database"
    if isinstance(cause, psycopg.OperationalError):
        # No SQLSTATE: the client library lost or never had a connection. (Deadlocks and
        # cancelled statements are OperationalErrors too, with their own SQLSTATE: a 500.)
        sqlstate = cause.sqlstate
        if sqlstate is None or sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES:
            return "database"
    if isinstance(cause, psycopg.InterfaceError) and "connection" in str(cause):
        return "database"  # "the connection is closed/lost", not a misused cursor
    if isinstance(cause, sqlite3.OperationalError) and str(cause) in _SQLITE_UNAVAILABLE:
        return "database"
    return None


def service_unavailable_response(request: HttpRequest, service: str) -> HttpResponse:
    # Not "nothing was stored": a connection lost during COMMIT leaves that unknown. Retrying
    # is safe where it matters (ingestion deduplicates replayed events).
    detail = f"The {service} is unavailable; the request was not completed. Retry shortly."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": detail}, status=503)
    else:
        # Plain: a page that needs no database, session or template to render.
        response = HttpResponse(
            f"<!doctype html><title>Unavailable</title><h1>Temporarily unavailable</h1>"
            f"<p>{detail}</p>",
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class ServiceUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        service = unavailable_service(exception)
        if service is None:
            return None
        logger.warning(
            "%s unavailable on %s %s: %s: %s",
            service,
            request.method,
            request.path,
            exception.__class__.__name__,
            exception,
        )
        return service_unavailable_response(request, service)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an outage met outside a view (e.g. in another middleware) is still a 503."""
    error = sys.exc_info()[1]
    service = unavailable_service(error) if error is not None else None
    if service is not None:
        return service_unavailable_response(request, service)
    return defaults.server_error(request)


def _api_error(request: HttpRequest, status: int, detail: str) -> HttpResponse | None:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=status)
    return None


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: a body Django itself refuses (too many fields, too large, a bad host) is
    answered as JSON under /api/, like every other API error."""
    reason = str(exception)
    detail = f"Bad request: {reason or 'the request could not be read'}."
    return _api_error(request, 400, detail) or defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403: templates/403.html says why in the exception's words (JSON under /api/)."""
    return _api_error(request, 403, str(exception) or "Permission denied.") or (
        defaults.permission_denied(request, exception)
    )


def api_not_found(request: HttpRequest) -> HttpResponse:
    """The last URL pattern: any /api/ path no route took answers JSON, with DEBUG on too
    (handler404 serves only with DEBUG off; Django's debug page is HTML)."""
    return JsonResponse({"detail": "Not found."}, status=404)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: an API path that matches no route (e.g. an id with a newline) is JSON too."""
    return _api_error(request, 404, "Not found.") or defaults.page_not_found(request, exception)


class PermissionsPolicyMiddleware:
    """Deny browser features no page here uses (settings.PERMISSIONS_POLICY)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response
