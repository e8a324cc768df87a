"""Ingestion keys: create, revoke, note their use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.ratelimit import CACHE_UNAVAILABLE_ERRORS
from tenancy.models import PUBLISHABLE_ORIGINS_CACHE_KEY, ApiKey, Project, origin_normalize

LAST_USED_GRANULARITY = timedelta(minutes=1)


def api_key_create(
    *,
    project: Project,
    name: str = "",
    created_by: User | None = None,
    publishable: bool = False,
    origins: Sequence[str] = (),
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """A new ingestion key and its raw value, which is not stored and cannot be shown again.

    A publishable key (glpub_..., for web pages) needs the origins its pages are served
    from; each is normalised as browsers send it. Raises ValidationError naming
    `origins` for a bad or missing origin, or origins given to a secret key.
    """
    if publishable:
        if not origins:
            raise ValidationError({"origins": "A publishable key needs at least one origin."})
        allowed: list[str] = []
        for origin in origins:
            try:
                normalised = origin_normalize(origin)
            except ValidationError as error:
                raise ValidationError({"origins": error.messages}) from None
            if normalised not in allowed:
                allowed.append(normalised)
    elif origins:
        raise ValidationError({"origins": "Only publishable keys have origins."})
    else:
        allowed = []
    kind = ApiKey.Kind.PUBLISHABLE if publishable else ApiKey.Kind.SECRET
    raw, prefix, hashed = ApiKey.generate(kind)
    key = ApiKey.objects.create(
        project=project,
        name=name,
        kind=kind,
        allowed_origins=allowed,
        rate_limit_per_minute=rate_limit_per_minute,
        prefix=prefix,
        hashed_key=hashed,
        created_by=created_by,
    )
    if publishable:
        publishable_origins_forget()
    return key, raw


def api_keys_revoke(*, keys: Iterable[ApiKey]) -> int:
    ids = [key.pk for key in keys]
    count = ApiKey.objects.filter(pk__in=ids, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    publishable_origins_forget()
    return count


def publishable_origins_forget() -> None:
    """Drop the cached origins of active publishable keys (config/cors.py), now and again
    after commit so no request refills it from before the change. Without a cache, the
    entry expires by itself within seconds."""

    def forget() -> None:
        with contextlib.suppress(*CACHE_UNAVAILABLE_ERRORS):
            cache.delete(PUBLISHABLE_ORIGINS_CACHE_KEY)

    forget()
    transaction.on_commit(forget)


def api_key_mark_used(*, key: ApiKey, now: datetime | None = None) -> None:
    """Record use, at most once a minute per key so hot keys do not write on every request."""
    now = now or timezone.now()
    if key.last_used_at is not None and key.last_used_at >= now - LAST_USED_GRANULARITY:
        return  # the row just read says it is fresh: no write, no query
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_GRANULARITY), pk=key.pk
    ).update(last_used_at=now)
