"""`/healthz`: can this process reach its database (and its broker, when one is set)?"""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure is the answer
        checks["database"] = f"error: {error.__class__.__name__}"
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from config.celery import app

        try:
            with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as error:  # noqa: BLE001
            checks["broker"] = f"error: {error.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
