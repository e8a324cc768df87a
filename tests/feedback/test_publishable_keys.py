"""Publishable (browser) ingestion keys: kinds, origins, CORS, ?key=, text/plain bodies."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from feedback.models import Event
from tenancy.keys import api_key_create, api_keys_revoke
from tenancy.models import ApiKey, hash_api_key
from tests.factories import event, generation

URL = "/api/v1/events"
APP = "https://app.example.com"
EVIL = "https://evil.example.net"
pytestmark = pytest.mark.django_db


@pytest.fixture
def publishable(project) -> str:
    _, raw = api_key_create(project=project, name="web", publishable=True, origins=[APP])
    return raw


@pytest.fixture
def secret(project) -> str:
    _, raw = api_key_create(project=project, name="server")
    return raw


def browser_events() -> list[dict]:
    return [
        event("view", generation_id="g1", t=1, dwell_ms=1200),
        event("copy", generation_id="g1", t=2, text="revenue"),
        event("rating", generation_id="g1", t=3, value=True),
    ]


def post(key: str | None, events: list[dict], *, origin: str | None = APP, **extra):
    client = APIClient()
    headers = dict(extra)
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if origin is not None:
        headers["HTTP_ORIGIN"] = origin
    return client.post(URL, {"events": events}, format="json", **headers)


def preflight(origin: str):
    return APIClient().options(
        URL,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


# Keys


def test_publishable_key_has_its_own_prefix_kind_and_normalised_origins(project):
    key, raw = api_key_create(
        project=project,
        publishable=True,
        origins=["HTTPS://App.Example.com:443/", "http://127.0.0.1:8000"],
    )
    assert raw.startswith("glpub_") and key.prefix == raw[:12]
    assert key.kind == ApiKey.Kind.PUBLISHABLE
    assert key.allowed_origins == [APP, "http://127.0.0.1:8000"]
    secret_key, secret_raw = api_key_create(project=project)
    assert secret_raw.startswith("glk_") and secret_key.kind == ApiKey.Kind.SECRET


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com/path",
        "ftp://app.example.com",
        "app.example.com",
        "https://*.example.com",
        "https://user@app.example.com",
        "https://app.example.com?x=1",
        "",
    ],
)
def test_bad_origin_is_refused_naming_origins(project, origin):
    with pytest.raises(ValidationError) as error:
        api_key_create(project=project, publishable=True, origins=[origin])
    assert "origins" in error.value.message_dict
    assert not ApiKey.objects.exists()


def test_publishable_key_needs_an_origin_and_a_secret_key_has_none(project):
    with pytest.raises(ValidationError) as missing:
        api_key_create(project=project, publishable=True, origins=[])
    assert "origins" in missing.value.message_dict
    with pytest.raises(ValidationError) as secret_with_origin:
        api_key_create(project=project, origins=[APP])
    assert "origins" in secret_with_origin.value.message_dict


# Event types and origins


def test_generation_sent_with_publishable_key_is_refused_by_type_and_the_rest_stored(publishable):
    events = [generation("g1"), *browser_events()]
    response = post(publishable, events)
    assert response.status_code == 207, response.json()
    body = response.json()
    assert body["accepted"] == 3 and body["rejected"] == 1
    assert body["errors"][0]["index"] == 0 and body["errors"][0]["id"] == events[0]["id"]
    assert list(body["errors"][0]["errors"]) == ["type"]
    assert "secret key" in body["errors"][0]["errors"]["type"]
    assert sorted(Event.objects.values_list("type", flat=True)) == ["copy", "rating", "view"]
    assert response["Access-Control-Allow-Origin"] == APP  # the page can read the 207


def test_publishable_key_from_listed_origin_is_accepted_with_cors_headers(publishable):
    response = post(publishable, browser_events())
    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 3
    assert response["Access-Control-Allow-Origin"] == APP
    assert "Origin" in response["Vary"]
    assert response["Content-Security-Policy"]  # the site's CSP middleware still runs
    assert response["Permissions-Policy"]


def test_publishable_key_from_unlisted_origin_is_403_naming_origin(publishable):
    response = post(publishable, browser_events(), origin=EVIL)
    assert response.status_code == 403
    assert "Origin" in response.json()["errors"]
    assert "Access-Control-Allow-Origin" not in response
    assert not Event.objects.exists()


def test_publishable_key_without_origin_is_403(publishable):
    response = post(publishable, browser_events(), origin=None)
    assert response.status_code == 403
    assert "no Origin header" in response.json()["detail"]
    assert not Event.objects.exists()


def test_origin_listed_on_another_projects_key_is_still_403(publishable, other_project):
    api_key_create(project=other_project, publishable=True, origins=[EVIL])
    response = post(publishable, browser_events(), origin=EVIL)
    assert response.status_code == 403
    assert not Event.objects.exists()


def test_secret_key_ignores_origin_and_gets_no_cors_headers(secret, publishable):
    for origin in (None, EVIL, APP):
        response = post(secret, [generation(f"g-{origin}")], origin=origin)
        assert response.status_code == 200, response.json()
        assert "Access-Control-Allow-Origin" not in response
    assert Event.objects.filter(type="generation").count() == 3


def test_revoked_publishable_key_is_401_and_its_origin_no_longer_preflights(project):
    key, raw = api_key_create(project=project, publishable=True, origins=[APP])
    assert preflight(APP).status_code == 204
    api_keys_revoke(keys=[key])
    assert post(raw, browser_events()).status_code == 401
    assert "Access-Control-Allow-Origin" not in preflight(APP)


# CORS preflight


def test_preflight_from_listed_origin_has_the_cors_headers(publishable):
    response = preflight(APP)
    assert response.status_code in (200, 204)
    assert response["Access-Control-Allow-Origin"] == APP
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Origin" in response["Vary"]


def test_preflight_keeps_the_site_headers_and_reads_the_origins_from_the_cache(
    publishable, django_assert_num_queries
):
    first = preflight(APP)
    assert first["Content-Security-Policy"] and first["Permissions-Policy"]
    with django_assert_num_queries(0):
        assert preflight(APP)["Access-Control-Allow-Origin"] == APP
        assert preflight(EVIL).status_code == 403


def test_preflight_from_unlisted_origin_has_no_cors_headers(publishable):
    response = preflight(EVIL)
    assert response.status_code == 403
    assert not [name for name in response.headers if name.lower().startswith("access-control")]


def test_preflight_elsewhere_gets_no_cors_headers(publishable):
    response = APIClient().options(
        "/api/v1/sessions/s1", HTTP_ORIGIN=APP, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET"
    )
    assert "Access-Control-Allow-Origin" not in response


# ?key= and text/plain (navigator.sendBeacon)


def beacon(key: str, events: list[dict], origin: str | None = APP):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return APIClient().generic(
        "POST",
        f"{URL}?key={key}",
        json.dumps({"events": events}),
        content_type="text/plain;charset=UTF-8",
        **headers,
    )


def test_publishable_key_in_query_string_with_text_plain_body_is_accepted(publishable):
    response = beacon(publishable, browser_events())
    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 3
    assert response["Access-Control-Allow-Origin"] == APP


def test_text_plain_json_body_with_bearer_publishable_key_is_accepted(publishable):
    response = APIClient().generic(
        "POST",
        URL,
        json.dumps({"events": browser_events()}),
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {publishable}",
        HTTP_ORIGIN=APP,
    )
    assert response.status_code == 200, response.json()
    assert Event.objects.count() == 3


def test_publishable_key_in_query_string_still_needs_a_listed_origin(publishable):
    assert beacon(publishable, browser_events(), origin=EVIL).status_code == 403
    assert beacon(publishable, browser_events(), origin=None).status_code == 403
    assert not Event.objects.exists()


def test_secret_key_in_query_string_is_refused_with_401(secret):
    response = beacon(secret, [generation("g1")])
    assert response.status_code == 401
    assert "never" in response.json()["detail"] and "secret key" in response.json()["detail"]
    assert not Event.objects.exists()


def test_key_in_header_and_query_string_is_refused(publishable):
    response = APIClient().post(
        f"{URL}?key={publishable}",
        {"events": browser_events()},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {publishable}",
        HTTP_ORIGIN=APP,
    )
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_bad_body_with_publishable_key_is_400_readable_by_the_page(publishable):
    response = APIClient().generic(
        "POST",
        f"{URL}?key={publishable}",
        "not json",
        content_type="text/plain",
        HTTP_ORIGIN=APP,
    )
    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == APP


def test_text_plain_body_nested_too_deeply_is_refused_not_a_500(publishable):
    def beacon_body(body: str):
        return APIClient().generic(
            "POST", f"{URL}?key={publishable}", body, content_type="text/plain", HTTP_ORIGIN=APP
        )

    top = beacon_body("[" * 100_000 + "]" * 100_000)
    assert top.status_code == 400 and "body" in top.json()["errors"]
    inside = beacon_body('{"events": [' + "[" * 100_000 + "]" * 100_000 + "]}")
    assert inside.status_code == 207
    assert inside.json()["rejected"] == 1 and inside.json()["accepted"] == 0
    assert not Event.objects.exists()


# Rate limits


def test_publishable_rate_limit_is_per_key_with_its_own_default(project, settings):
    settings.GLEANER_PUBLISHABLE_RATE_LIMIT_PER_MINUTE = 2
    settings.GLEANER_INGEST_RATE_PER_MINUTE = 100
    _, first = api_key_create(project=project, publishable=True, origins=[APP])
    _, second = api_key_create(project=project, publishable=True, origins=[APP])
    _, secret = api_key_create(project=project)
    assert [post(first, []).status_code for _ in range(3)] == [200, 200, 429]
    refused = post(first, [])
    assert refused["Access-Control-Allow-Origin"] == APP and refused["Retry-After"]
    assert post(second, []).status_code == 200  # another key, its own window
    assert [post(secret, [], origin=None).status_code for _ in range(3)] == [200, 200, 200]


def test_publishable_key_own_rate_limit_overrides_the_default(project, settings):
    settings.GLEANER_PUBLISHABLE_RATE_LIMIT_PER_MINUTE = 100
    _, raw = api_key_create(
        project=project, publishable=True, origins=[APP], rate_limit_per_minute=1
    )
    assert [post(raw, []).status_code for _ in range(2)] == [200, 429]


# manage.py create_key


def create_key(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("create_key", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_key_prints_a_secret_key_alone_on_the_last_line(project):
    lines = create_key("acme", "--name", "backend", "--rate-limit", "50")
    key = ApiKey.objects.get(hashed_key=hash_api_key(lines[-1]))
    assert lines[-1].startswith("glk_") and key.kind == ApiKey.Kind.SECRET
    assert (key.project, key.name, key.rate_limit_per_minute) == (project, "backend", 50)


def test_create_key_prints_a_publishable_key_that_works_from_its_origins(project):
    lines = create_key(
        "acme", "--publishable", "--origin", APP, "--origin", "http://127.0.0.1:8000"
    )
    raw = lines[-1]
    assert raw.startswith("glpub_") and " " not in raw
    key = ApiKey.objects.get(hashed_key=hash_api_key(raw))
    assert key.allowed_origins == [APP, "http://127.0.0.1:8000"]
    assert post(raw, browser_events(), origin="http://127.0.0.1:8000").status_code == 200


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["nope"], "project"),
        (["acme", "--publishable", "--origin", "https://app.example.com/path"], "--origin"),
        (["acme", "--origin", APP], "--origin"),
        (["acme", "--publishable"], "--origin"),
        (["acme", "--rate-limit", "0"], "--rate-limit"),
    ],
)
def test_create_key_refuses_bad_arguments_naming_them(project, args, named):
    with pytest.raises(CommandError) as error:
        create_key(*args)
    assert str(error.value).startswith(named + ":")
    assert not ApiKey.objects.exists()


# Admin


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_admin_creates_a_publishable_key_with_its_origins_and_shows_it_once(admin_client, project):
    response = admin_client.post(
        reverse("admin:tenancy_apikey_add"),
        {
            "project": project.pk,
            "name": "web",
            "kind": "publishable",
            "allowed_origins": "https://App.example.com/\nhttp://127.0.0.1:8000",
            "rate_limit_per_minute": "",
        },
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    raw = next(word for m in shown for word in m.split() if word.startswith("glpub_"))
    key = ApiKey.objects.get(hashed_key=hash_api_key(raw))
    assert key.kind == ApiKey.Kind.PUBLISHABLE and key.name == "web"
    assert key.allowed_origins == [APP, "http://127.0.0.1:8000"]
    listing = admin_client.get(reverse("admin:tenancy_apikey_changelist")).content.decode()
    assert "Publishable (browser)" in listing and "http://127.0.0.1:8000" in listing
    change = admin_client.get(reverse("admin:tenancy_apikey_change", args=[key.pk]))
    assert raw not in change.content.decode()  # shown once, never again


@pytest.mark.parametrize(
    ("kind", "origins"),
    [("publishable", ""), ("publishable", "https://app.example.com/x"), ("secret", APP)],
)
def test_admin_refuses_bad_origins_naming_the_field(admin_client, project, kind, origins):
    response = admin_client.post(
        reverse("admin:tenancy_apikey_add"),
        {"project": project.pk, "name": "web", "kind": kind, "allowed_origins": origins},
    )
    assert response.status_code == 200
    assert "allowed_origins" in response.context["adminform"].form.errors
    assert not ApiKey.objects.exists()
