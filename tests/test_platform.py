"""Platform behaviour: 503 on real outages, the connection pool, login and token throttling,
and the browser security headers (CSP, Permissions-Policy) on every page."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.utils import load_backend
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from config.middleware import unavailable_service
from core.ratelimit import ServiceUnavailable
from feedback.models import Event
from review.models import Queue
from tenancy.authentication import IngestKeyThrottle
from tenancy.keys import api_key_create, api_keys_revoke
from tests.conftest import token_client
from tests.factories import generation
from tests.worker import wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server on a free port that a test can stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def _answers(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        except redis.exceptions.ConnectionError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, what="redis-server to answer")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(autouse=True)
def _private_cache(settings, request) -> None:
    """Failure counters of one test never lock out another, whatever cache the run uses."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": request.node.nodeid,
        }
    }


@pytest.fixture
def redis_server(settings, tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    yield server
    server.stop()


@contextmanager
def database_unreachable() -> Iterator[None]:
    """This thread's default connection points at a database that is not there."""
    original = connections[DEFAULT_DB_ALIAS]
    dead = {**original.settings_dict}
    dead["OPTIONS"] = {k: v for k, v in dead["OPTIONS"].items() if k != "pool"}
    if original.vendor == "postgresql":
        dead.update(HOST="127.0.0.1", PORT=str(free_port()))
    else:
        dead["NAME"] = str(ROOT / "no-such-directory" / "gleaner.sqlite3")
    wrapper = load_backend(dead["ENGINE"]).DatabaseWrapper(dead, DEFAULT_DB_ALIAS)
    connections[DEFAULT_DB_ALIAS] = wrapper
    try:
        yield
    finally:
        wrapper.close()
        connections[DEFAULT_DB_ALIAS] = original


def assert_unavailable(response, *, api: bool) -> None:
    assert response.status_code == 503, response.content[:300]
    assert int(response["Retry-After"]) > 0
    if api:
        assert "unavailable" in response.json()["detail"]
    else:
        assert b"unavailable" in response.content


def events_batch(prefix: str) -> dict:
    return {"events": [generation(f"{prefix}-g{i}", session=f"{prefix}-s{i}") for i in range(3)]}


# Outages: Redis -----------------------------------------------------------------------------


def test_ingestion_answers_503_while_redis_is_down_and_stores_nothing(redis_server, ingest_client):
    assert ingest_client.post("/api/v1/events", events_batch("a"), format="json").status_code == 200
    stored = Event.objects.count()

    redis_server.stop()
    started = time.monotonic()
    response = ingest_client.post("/api/v1/events", events_batch("b"), format="json")
    assert_unavailable(response, api=True)
    assert time.monotonic() - started < 5
    assert Event.objects.count() == stored

    redis_server.start()
    response = ingest_client.post("/api/v1/events", events_batch("b"), format="json")
    assert response.status_code == 200 and response.json()["accepted"] == 3


def test_ingestion_rate_limiter_fails_closed_when_redis_is_down(redis_server, project):
    # Authentication also reads the cache first, so over HTTP it is the one that answers;
    # the rate limiter on its own must refuse too, not wave requests through.
    key, _ = api_key_create(project=project, name="direct")
    request = Request(APIRequestFactory().post("/api/v1/events"))
    request.auth = key
    throttle = IngestKeyThrottle()
    assert throttle.allow_request(request, None) is True
    redis_server.stop()
    with pytest.raises(ServiceUnavailable) as refused:
        throttle.allow_request(request, None)
    assert refused.value.status_code == 503 and refused.value.wait > 0


def test_login_and_token_api_answer_503_while_redis_is_down(redis_server, alice):
    redis_server.stop()
    response = Client().post("/accounts/login/", {"username": "alice", "password": "pw-alice"})
    assert_unavailable(response, api=False)
    assert "_auth_user_id" not in Client().session
    assert_unavailable(token_client(alice).get("/api/v1/queues"), api=True)


# Outages: the database ----------------------------------------------------------------------


def test_pages_and_api_answer_503_while_the_database_is_unreachable(alice, api_key):
    pages = Client()
    pages.force_login(alice)
    tokens = token_client(alice)
    ingest = APIClient()
    ingest.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    with database_unreachable():
        assert_unavailable(pages.get("/review/"), api=False)
        assert_unavailable(
            Client().post("/accounts/login/", {"username": "alice", "password": "pw-alice"}),
            api=False,
        )
        assert_unavailable(tokens.get("/api/v1/queues"), api=True)
        assert_unavailable(
            ingest.post("/api/v1/events", events_batch("d"), format="json"), api=True
        )
        health = Client().get("/healthz")
        assert health.status_code == 503 and health.json()["database"].startswith("error")
    assert pages.get("/review/").status_code == 200
    assert Client().get("/healthz").status_code == 200
    assert not Event.objects.exists()


def test_errors_that_are_not_outages_are_not_answered_503(on_postgres):
    # A missing table (a bug) and, on PostgreSQL, a cancelled statement (an OperationalError
    # like a lost connection, but with its own SQLSTATE) stay 500s.
    with (
        pytest.raises(DatabaseError) as missing,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT * FROM no_such_table_here")
    assert unavailable_service(missing.value) is None
    assert unavailable_service(ValueError("a bug")) is None
    if on_postgres:
        with (
            pytest.raises(OperationalError) as cancelled,
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SET LOCAL statement_timeout = 1")
            cursor.execute("SELECT pg_sleep(1)")
        assert unavailable_service(cancelled.value) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_exhausted_pool_answers_503_quickly_and_recovers(alice):
    """One connection in the pool, held by this thread: a request waits out the pool timeout,
    answers 503 with Retry-After, and is served as soon as the connection comes back."""
    tokens = token_client(alice)
    settings_dict = connection.settings_dict
    options = settings_dict["OPTIONS"]
    connection.close()
    connection.close_pool()
    settings_dict["OPTIONS"] = {**options, "pool": {"min_size": 0, "max_size": 1, "timeout": 0.5}}
    try:
        connection.ensure_connection()  # takes the pool's only connection
        answers: list = []

        def request() -> None:
            started = time.monotonic()
            try:
                response = tokens.get("/api/v1/queues")
                answers.append((response, time.monotonic() - started))
            finally:
                connections.close_all()

        thread = threading.Thread(target=request)
        thread.start()
        thread.join(timeout=30)
        response, elapsed = answers.pop()
        assert_unavailable(response, api=True)
        assert elapsed < 5, elapsed  # the pool timeout is 0.5 s; margin for a loaded machine

        health = []
        thread = threading.Thread(
            target=lambda: (health.append(Client().get("/healthz")), connections.close_all())
        )
        thread.start()
        thread.join(timeout=30)
        assert health[0].status_code == 503

        connection.close()  # gives the connection back
        thread = threading.Thread(target=request)
        thread.start()
        thread.join(timeout=30)
        response, _ = answers.pop()
        assert response.status_code == 200
    finally:
        connection.close()
        connection.close_pool()
        settings_dict["OPTIONS"] = options


@pytest.mark.postgres
def test_postgres_runs_on_the_connection_pool_from_settings():
    from django.conf import settings

    pool = settings.DATABASES["default"]["OPTIONS"].get("pool")
    assert pool and pool["max_size"] >= 1 and pool["timeout"] > 0
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 0
    assert connection.pool is not None


# Login and token throttling -----------------------------------------------------------------


def login(username: str, password: str, ip: str = "203.0.113.5", path: str = "/accounts/login/"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(path, {"username": username, "password": password})
    return client, response


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_ten_wrong_passwords_lock_the_account_even_for_the_right_one(settings, alice):
    assert settings.GLEANER_LOGIN_FAILURES_PER_USERNAME == 10
    for attempt in range(10):
        client, response = login("alice", f"wrong-{attempt}", ip=f"198.51.100.{attempt}")
        assert response.status_code == 200 and not logged_in(client)
        assert b"Too many failed logins" not in response.content
    client, response = login("alice", "pw-alice", ip="198.51.100.200")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert b"Too many failed logins" in response.content
    assert not logged_in(client)
    # Another account is not locked by alice's failures.
    django_user_model = type(alice)
    django_user_model.objects.create_user(username="dora", password="pw-dora")
    client, response = login("dora", "pw-dora", ip="198.51.100.201")
    assert response.status_code == 302 and logged_in(client)


def test_many_usernames_from_one_address_lock_that_address(settings, alice):
    settings.GLEANER_LOGIN_FAILURES_PER_IP = 4
    for attempt in range(4):
        _, response = login(f"nobody{attempt}", "guess", ip="192.0.2.7")
        assert response.status_code == 200
    client, response = login("alice", "pw-alice", ip="192.0.2.7")
    assert response.status_code == 429 and not logged_in(client)
    client, response = login("alice", "pw-alice", ip="192.0.2.8")
    assert response.status_code == 302 and logged_in(client)


def test_a_successful_login_is_not_counted_as_a_failure(settings, alice):
    settings.GLEANER_LOGIN_FAILURES_PER_USERNAME = 2
    for _ in range(5):
        client, response = login("alice", "pw-alice")
        assert response.status_code == 302 and logged_in(client)


def test_admin_login_is_throttled_too(settings, django_user_model):
    settings.GLEANER_LOGIN_FAILURES_PER_USERNAME = 2
    django_user_model.objects.create_superuser(username="root", password="pw-root")
    for _ in range(2):
        client, response = login("root", "wrong", path="/admin/login/")
        assert response.status_code == 200 and not logged_in(client)
    client, response = login("root", "pw-root", path="/admin/login/")
    assert b"Too many failed logins" in response.content and not logged_in(client)


def test_wrong_tokens_from_one_address_answer_429_even_for_a_right_token(settings, alice):
    settings.GLEANER_API_AUTH_FAILURES_PER_IP = 3
    right = Token.objects.create(user=alice).key
    attacker = APIClient(REMOTE_ADDR="192.0.2.50")
    for attempt in range(3):
        attacker.credentials(HTTP_AUTHORIZATION=f"Token {attempt:040x}")
        assert attacker.get("/api/v1/queues").status_code == 401
    attacker.credentials(HTTP_AUTHORIZATION=f"Token {right}")
    response = attacker.get("/api/v1/queues")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    other = APIClient(REMOTE_ADDR="192.0.2.51")
    other.credentials(HTTP_AUTHORIZATION=f"Token {right}")
    assert other.get("/api/v1/queues").status_code == 200


def test_unknown_ingestion_keys_are_throttled_but_a_revoked_one_is_not_counted(
    settings, project, api_key
):
    settings.GLEANER_API_AUTH_FAILURES_PER_IP = 3
    revoked, revoked_raw = api_key_create(project=project, name="old")
    api_keys_revoke(keys=[revoked])
    client = APIClient(REMOTE_ADDR="192.0.2.60")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {revoked_raw}")
    for _ in range(5):
        assert client.post("/api/v1/events", events_batch("e"), format="json").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert client.post("/api/v1/events", events_batch("e"), format="json").status_code == 200
    for attempt in range(3):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer guess-{attempt}")
        assert client.post("/api/v1/events", events_batch("f"), format="json").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    response = client.post("/api/v1/events", events_batch("f"), format="json")
    assert response.status_code == 429
    assert Event.objects.filter(session__external_id__startswith="f-").count() == 0


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scheme=st.sampled_from(["Token", "Bearer", "token", "Basic"]),
    value=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=60),
)
def test_any_authorization_header_is_answered_without_a_5xx(scheme, value, alice):
    client = APIClient(REMOTE_ADDR="192.0.2.70")
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {value}")
    assert client.get("/api/v1/queues").status_code in (401, 403, 429)


# Browser security headers -------------------------------------------------------------------

HEADERS = {
    "Content-Security-Policy",
    "Permissions-Policy",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
}


def csp(response) -> dict[str, list[str]]:
    policy = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, *values = directive.split()
        policy[name] = values
    return policy


def test_every_page_carries_the_security_headers(project, alice, carol, django_user_model):
    queue = Queue.objects.create(project=project, name="Q", annotations_per_item=1)
    queue.members.add(alice, carol)
    admin = django_user_model.objects.create_superuser(username="root", password="pw-root")
    anonymous, annotator, lead, superuser = Client(), Client(), Client(), Client()
    annotator.force_login(alice)
    lead.force_login(carol)
    superuser.force_login(admin)
    pages = [
        (anonymous, "/accounts/login/"),
        (annotator, "/review/"),
        (annotator, f"/review/q/{queue.pk}/"),
        (lead, f"/review/q/{queue.pk}/overview"),
        (lead, f"/review/q/{queue.pk}/agreement"),
        (lead, "/exports/"),
        (superuser, "/admin/"),
        (superuser, "/admin/tenancy/project/"),
        (anonymous, "/api/docs/"),
        (anonymous, "/healthz"),
        (anonymous, "/api/v1/queues"),
    ]
    for client, path in pages:
        response = client.get(path)
        assert response.status_code in (200, 401, 403), (path, response.status_code)
        assert set(response.headers) >= HEADERS, (path, HEADERS - set(response.headers))
        policy = csp(response)
        assert policy["default-src"] == ["'none'"], path
        assert policy["script-src"] == ["'self'"], path
        assert policy["img-src"] == ["'self'", "data:"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert policy["base-uri"] == ["'none'"] and policy["object-src"] == ["'none'"], path
        assert policy["form-action"] == ["'self'"], path
        expected_style = ["'self'", "'unsafe-inline'"] if path == "/api/docs/" else ["'self'"]
        assert policy["style-src"] == expected_style, path
        assert "camera=()" in response["Permissions-Policy"], path
        assert response["Referrer-Policy"] == "same-origin", path


def test_api_docs_load_their_script_from_a_file():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    script_srcs = re.findall(rb"<script src=\"([^\"]+)\"", response.content)
    assert any(b"script=" in src for src in script_srcs)
    assert not re.search(rb"<script>", response.content)
    script = Client().get(next(src for src in script_srcs if b"script=" in src).decode())
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script> without src"),
    (re.compile(r"<style\b", re.I), "<style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"\shx-on", re.I), "hx-on (evaluated script)"),
]


def test_no_template_carries_inline_script_or_style():
    templates = sorted((ROOT / "templates").rglob("*.html"))
    assert len(templates) > 10
    found = [
        f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 1}: {what}"
        for path in templates
        for text in [path.read_text()]
        for pattern, what in INLINE
        for match in pattern.finditer(text)
    ]
    assert not found, found


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_page_works_in_a_browser_under_the_policy(
    live_server, browser, project, carol, django_user_model
):
    """The browser fixture fails the test on any CSP or Permissions-Policy console error."""
    from playwright.sync_api import expect

    from tests.review.conftest import make_items

    queue = Queue.objects.create(project=project, name="Q", annotations_per_item=1)
    queue.members.add(carol)
    make_items(queue, 2)
    django_user_model.objects.create_superuser(username="root", password="pw-root")
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()

    def log_in(username: str, lands_on: str) -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(f"pw-{username}")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(lands_on))

    log_in("carol", r"/review/lead/$")  # a lead lands on the projects she leads
    for path in [
        "/review/",
        f"/review/q/{queue.pk}/",
        f"/review/q/{queue.pk}/overview",
        f"/projects/{project.slug}/team",
    ]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
    page.goto(f"{live_server.url}/review/q/{queue.pk}/agreement")
    page.goto(f"{live_server.url}/exports/")
    page.get_by_role("button", name="Log out").click()
    log_in("root", r"/review/lead/$")  # a superuser too
    page.goto(f"{live_server.url}/admin/review/queue/")
    expect(page.locator("#result_list")).to_be_visible()
    page.goto(f"{live_server.url}/admin/review/queue/{queue.pk}/change/")
    expect(page.locator("#queue_form")).to_be_visible()
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    assert browser.policy_errors == []

    # The watch works: a foreign image and an inline style on a page are refused and reported.
    page.goto(f"{live_server.url}/review/")
    page.evaluate(
        """document.body.insertAdjacentHTML('beforeend',
           '<img src="https://example.com/pixel.png"><p style="color: red">x</p>')"""
    )
    wait_until(lambda: len(browser.policy_errors) >= 2, timeout=10, what="CSP reports")
    assert any("example.com" in error for error in browser.policy_errors)
    browser.policy_errors.clear()


def test_api_body_django_refuses_is_answered_as_json_naming_the_problem(mel, settings):
    """Django refuses a form body of too many fields before any view runs; under /api/ the
    answer is JSON like every other API error, elsewhere Django's own 400 page. (The
    export API takes forms as well as JSON; the review API takes JSON only.)"""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    body = "&".join(f"f{n}=1" for n in range(11))
    form = "application/x-www-form-urlencoded"
    response = token_client(mel).post("/api/v1/exports", body, content_type=form)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["detail"]

    response = Client().post("/accounts/login/", body, content_type=form)
    assert response.status_code == 400
    assert "application/json" not in response["Content-Type"]


def test_api_path_that_matches_no_route_is_a_json_404(alice, project):
    """A session id with a newline matches no route; the API still answers JSON."""
    response = token_client(alice).get("/api/v1/sessions/a%0Ab?project=acme")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert Client().get("/no-such-page/")["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [True, False])
def test_an_unknown_api_path_is_json_with_debug_on_or_off(settings, debug):
    settings.DEBUG = debug
    for path in ("/api/v1/no-such-endpoint", "/api/v2/events", "/api/v1/events/extra"):
        response = Client().get(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not found."}, path
