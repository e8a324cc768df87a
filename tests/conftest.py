"""Shared fixtures. Named users for permission tests: alice (annotator), bob (annotator),
carol (lead), mel (ML engineer), owen (admin of another project)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.core import signals
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import scheduling
from feedback import services
from feedback.quality import calibration_forget
from tenancy.keys import api_key_create
from tenancy.models import Membership
from tenancy.services import membership_set

pytest_plugins = ["tests.browser", "tests.worker"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (never skip) tests whose services this run does not have.

    The PostgreSQL pass of CI sets GLEANER_REQUIRE_SERVICES=1: there a missing service
    fails the run instead of deselecting anything.
    """
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
    has_redis = bool(os.environ.get("REDIS_URL"))
    from tests.browser import CHROMIUM  # the plugin, loaded by now

    has_chromium = os.path.exists(CHROMIUM)
    if os.environ.get("GLEANER_REQUIRE_SERVICES") == "1":
        if not (on_postgres and has_redis and has_chromium):
            raise pytest.UsageError(
                "GLEANER_REQUIRE_SERVICES=1 needs DATABASE_URL=postgres://..., REDIS_URL and "
                f"{CHROMIUM} (Debian package chromium)."
            )
        return
    keep, drop = [], []
    for item in items:
        needs_pg = item.get_closest_marker("postgres") or item.get_closest_marker("worker")
        needs_redis = item.get_closest_marker("worker")
        needs_chromium = item.get_closest_marker("browser")
        if (
            (needs_pg and not on_postgres)
            or (needs_redis and not has_redis)
            or (needs_chromium and not has_chromium)
        ):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Test users need no brute-force resistance; PBKDF2 costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_calibration():
    """Derivation and exports read the calibration (verdicts per rule and band), which
    feedback.quality keeps per project id for 30 s in this process; test databases roll
    back and reuse ids, so without this a test would follow the verdicts of the one before."""
    calibration_forget()
    yield
    calibration_forget()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit windows and debounce marks live in the cache: no test sees another's.

    Only the in-process cache is cleared; a Redis cache is shared with the Celery broker of
    the worker tests, and there keys cannot collide (PostgreSQL never reuses ids), except
    the failure and rate counters (every test client is 127.0.0.1): those are deleted.
    """
    scheduling.windows_forget()
    cache = caches["default"]
    if isinstance(cache, LocMemCache):
        cache.clear()
    elif isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(match=cache.make_key("ratelimit:*")):
            client.delete(key)


@pytest.fixture
def project(db):
    project, _ = services.project_create(slug="acme", name="Acme Chat")
    return project


@pytest.fixture
def other_project(db):
    project, _ = services.project_create(slug="globex", name="Globex")
    return project


@pytest.fixture
def api_key(project):
    _, raw = api_key_create(project=project, name="test")
    return raw


@pytest.fixture
def ingest_client(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


def make_user(django_user_model, username: str, project=None, role: str | None = None):
    """A user with the test password `pw-<username>`, holding `role` in `project` if given."""
    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    if project is not None and role is not None:
        membership_set(project=project, user=user, role=role)
    return user


@pytest.fixture
def alice(django_user_model, project):
    return make_user(django_user_model, "alice", project, Membership.Role.ANNOTATOR)


@pytest.fixture
def bob(django_user_model, project):
    return make_user(django_user_model, "bob", project, Membership.Role.ANNOTATOR)


@pytest.fixture
def carol(django_user_model, project):
    return make_user(django_user_model, "carol", project, Membership.Role.LEAD)


@pytest.fixture
def mel(django_user_model, project):
    return make_user(django_user_model, "mel", project, Membership.Role.ML)


@pytest.fixture
def owen(django_user_model, other_project):
    return make_user(django_user_model, "owen", other_project, Membership.Role.ADMIN)


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def wsgi_app() -> Iterator[object]:
    """The Django WSGI app, served inside the test's transaction: like Django's test client,
    requests must not close the connection at their start and end."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
