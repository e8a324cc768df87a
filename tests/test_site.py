from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tenancy.models import ApiKey, Project, hash_api_key

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def test_healthz_reports_database_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_healthz_reports_a_broker_it_cannot_reach(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")


def test_openapi_schema_describes_the_event_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/events" in response.json()["paths"]


def test_api_docs_page_serves_local_assets(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content


def test_create_project_prints_a_working_key_last(capsys):
    call_command("create_project", "acme-support")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert ApiKey.objects.get(hashed_key=hash_api_key(key)).project.slug == "acme-support"
    call_command("create_project", "acme-support")
    assert Project.objects.filter(slug="acme-support").count() == 1
    assert ApiKey.objects.filter(project__slug="acme-support").count() == 2


def test_create_project_rejects_a_bad_slug_by_name():
    with pytest.raises(CommandError, match="slug"):
        call_command("create_project", "Not A Slug!")
    assert not Project.objects.exists()


def test_simulate_traffic_rejects_unknown_project_and_bad_counts(project):
    with pytest.raises(CommandError, match="--project"):
        call_command("simulate_traffic", "--project", "nope", "--sessions", "3")
    with pytest.raises(CommandError, match="--sessions"):
        call_command("simulate_traffic", "--project", project.slug, "--sessions", "0")
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("simulate_traffic", "--project", project.slug, "--batch-size", "5000")


def test_seed_demo_rejects_a_negative_session_count():
    with pytest.raises(CommandError, match="--sessions"):
        call_command("seed_demo", "--sessions", "-1")
    assert not Project.objects.exists()


PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "production-secret-from-the-environment-1234567890",
    "ALLOWED_HOSTS": "gleaner.example.com",
}


@pytest.mark.parametrize(
    "services",
    [
        {},
        # The production shape: PostgreSQL through the pool, Redis cache (neither is reached).
        {"DATABASE_URL": "postgres://u:p@db.invalid:5432/gleaner", "REDIS_URL": "redis://r:6379/0"},
    ],
    ids=["defaults", "postgres-redis"],
)
def test_check_deploy_is_clean_under_production_settings(services):
    env = {**os.environ, **PRODUCTION_ENV, **services}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_pool_connections_and_send_the_browser_policy():
    script = (
        "import json; from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(json.dumps([d['OPTIONS']['pool'], d['CONN_MAX_AGE'], s.SECURE_CSP, s.MIDDLEWARE]))"
    )
    env = {
        **os.environ,
        **PRODUCTION_ENV,
        "DATABASE_URL": "postgres://u:p@db.invalid:5432/gleaner",
        "DB_POOL_MAX": "6",
        "DB_POOL_TIMEOUT": "3",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    pool, conn_max_age, csp, middleware = json.loads(result.stdout.strip().splitlines()[-1])
    assert pool == {"min_size": 1, "max_size": 6, "timeout": 3} and conn_max_age == 0
    assert csp["script-src"] == ["'self'"] and csp["img-src"] == ["'self'", "data:"]
    assert "config.middleware.ServiceUnavailableMiddleware" in middleware


def test_production_settings_refuse_to_start_without_secret_key():
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": ""}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_home_asks_strangers_to_log_in_first(client):
    # Then it sends each role where its work is: tests/tenancy/test_landing.py.
    response = client.get("/")
    assert response.status_code == 302 and response.url == "/accounts/login/?next=/"
