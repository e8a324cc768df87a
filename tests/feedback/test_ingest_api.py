from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from feedback.models import Event, Generation, Session
from tenancy.keys import api_key_create, api_keys_revoke
from tenancy.models import ApiKey
from tests.factories import edit, event, generation, one_of_each

URL = "/api/v1/events"
pytestmark = pytest.mark.django_db


def post(client: APIClient, events, **kwargs):
    return client.post(URL, {"events": events}, format="json", **kwargs)


def test_every_event_type_is_accepted(ingest_client):
    response = post(ingest_client, one_of_each())
    assert response.status_code == 200, response.json()
    assert response.json() == {"accepted": 9, "duplicates": 0, "rejected": 0, "errors": []}
    assert sorted(Event.objects.values_list("type", flat=True)) == sorted(
        [
            "generation",
            "edit",
            "regenerate",
            "generation",
            "copy",
            "share",
            "view",
            "rating",
            "session_outcome",
        ]
    )
    g2 = Generation.objects.get(external_id="g2")
    assert g2.replaces.external_id == "g1"
    assert g2.events.count() == 5  # its generation event, copy, share, view, rating
    assert Session.objects.get().last_event_at > Session.objects.get().first_event_at


def test_plain_string_input_becomes_one_user_message(ingest_client):
    post(ingest_client, [generation("g1", input="Translate: bonjour")])
    assert Generation.objects.get().input == [{"role": "user", "content": "Translate: bonjour"}]


def test_replayed_event_is_a_duplicate(ingest_client):
    events = one_of_each()
    post(ingest_client, events)
    again = post(ingest_client, events)
    assert again.status_code == 200
    assert again.json()["accepted"] == 0
    assert again.json()["duplicates"] == 9
    assert Event.objects.count() == 9
    assert Generation.objects.count() == 2


def test_same_id_twice_in_one_batch_is_stored_once(ingest_client):
    first = generation("g1")
    response = post(ingest_client, [first, dict(first)])
    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 1
    assert Event.objects.count() == 1


def test_edit_before_its_generation_is_kept_and_linked_later(ingest_client):
    early = edit("g9", "Fixed text", t=5)
    response = post(ingest_client, [early])
    assert response.status_code == 200
    stored = Event.objects.get(client_id=early["id"])
    assert stored.generation is None and stored.generation_ref == "g9"

    post(ingest_client, [generation("g9", t=0)])
    stored.refresh_from_db()
    assert stored.generation.external_id == "g9"


def test_replaces_is_linked_when_the_replaced_generation_arrives_later(ingest_client):
    post(ingest_client, [generation("g2", replaces="g1", t=20)])
    assert Generation.objects.get(external_id="g2").replaces is None
    post(ingest_client, [generation("g1", t=0)])
    assert Generation.objects.get(external_id="g2").replaces.external_id == "g1"


@pytest.mark.parametrize(
    ("bad", "field", "fragment"),
    [
        ({"type": "teleport"}, "type", "Must be one of"),
        ({"type": None}, "type", "Must be one of"),
        ({"id": None}, "id", "required"),
        ({"id": 17}, "id", "string"),
        ({"session_id": ""}, "session_id", "required"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO 8601"),
        ({"timestamp": "2026-11-20T10:00:00"}, "timestamp", "timezone"),
        ({"timestamp": "2099-01-01T00:00:00Z"}, "timestamp", "future"),
        ({"generation_id": None}, "generation_id", "required"),
        ({"output": 42}, "output", "string"),
        ({"input": []}, "input", "list of messages"),
        ({"input": [{"role": "user"}]}, "input", "content"),
        ({"metadata": "x"}, "metadata", "object"),
        ({"output": "x" * (100 * 1024 + 1)}, "output", "102400 bytes"),
    ],
)
def test_bad_generation_field_is_rejected_by_name_and_the_rest_is_stored(
    ingest_client, bad, field, fragment
):
    good = generation("g1")
    broken = {**generation("g2"), **bad}
    response = post(ingest_client, [good, broken])
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    error = body["errors"][0]
    assert error["index"] == 1
    assert fragment in error["errors"][field]
    assert Event.objects.filter(client_id=good["id"]).exists()
    assert Event.objects.count() == 1


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (event("edit", generation_id="g1"), "text"),
        (event("view", generation_id="g1", dwell_ms=-1), "dwell_ms"),
        (event("view", generation_id="g1", dwell_ms="long"), "dwell_ms"),
        (event("rating", generation_id="g1", value="great"), "value"),
        (event("rating", generation_id="g1", value=2**60), "value"),
        (event("session_outcome", outcome="won"), "outcome"),
        (event("copy", generation_id="g1", text=["a"]), "text"),
    ],
)
def test_bad_typed_field_names_the_field(ingest_client, broken, field):
    response = post(ingest_client, [broken])
    assert response.status_code == 207
    assert field in response.json()["errors"][0]["errors"]
    assert Event.objects.count() == 0


def test_event_that_is_not_an_object_is_rejected(ingest_client):
    response = post(ingest_client, ["nope", generation("g1")])
    assert response.status_code == 207
    assert response.json()["errors"] == [
        {"index": 0, "id": None, "errors": {"event": "Must be a JSON object."}}
    ]
    assert Event.objects.count() == 1


def test_body_that_is_not_json_is_400(ingest_client):
    response = ingest_client.post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


@pytest.mark.parametrize("body", [[], {"event": []}, {"events": {"a": 1}}, "x"])
def test_body_without_events_list_is_400(ingest_client, body):
    response = ingest_client.post(URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert "events" in response.json()["errors"]


def test_too_many_events_is_413(ingest_client, settings):
    settings.GLEANER_MAX_EVENTS_PER_REQUEST = 3
    response = post(ingest_client, [generation(f"g{i}") for i in range(4)])
    assert response.status_code == 413
    assert "events" in response.json()["errors"]
    assert Event.objects.count() == 0


def test_too_large_body_is_413(ingest_client, settings):
    settings.GLEANER_MAX_REQUEST_BYTES = 2000
    response = post(ingest_client, [generation("g1", output="x" * 3000)])
    assert response.status_code == 413
    assert "body" in response.json()["errors"]


def test_missing_key_is_401(db):
    response = post(APIClient(), [generation("g1")])
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer glk_not-a-real-key")
    response = post(client, [generation("g1")])
    assert response.status_code == 401
    assert "unknown API key" in response.json()["detail"]


def test_revoked_key_is_401(ingest_client, project):
    api_keys_revoke(keys=ApiKey.objects.filter(project=project))
    response = post(ingest_client, [generation("g1")])
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert Event.objects.count() == 0


def test_user_token_cannot_write_events(mel):
    from tests.conftest import token_client

    response = post(token_client(mel), [generation("g1")])
    assert response.status_code == 401


def test_key_is_stored_hashed_and_marks_last_use(ingest_client, api_key, project):
    key = ApiKey.objects.get(project=project)
    assert api_key not in key.hashed_key and api_key.startswith(key.prefix)
    assert key.last_used_at is None
    post(ingest_client, [generation("g1")])
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_rate_limit_per_key_answers_429(ingest_client, project):
    ApiKey.objects.filter(project=project).update(rate_limit_per_minute=2)
    assert post(ingest_client, [generation("g1")]).status_code == 200
    assert post(ingest_client, [generation("g2")]).status_code == 200
    limited = post(ingest_client, [generation("g3")])
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert not Generation.objects.filter(external_id="g3").exists()


def test_events_go_to_the_keys_project_only(ingest_client, project, other_project):
    _, other_key = api_key_create(project=other_project)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    same_ids = one_of_each()
    post(ingest_client, same_ids)
    # The same client ids in another project are that project's own events.
    assert post(other, same_ids).json()["accepted"] == 9
    assert Event.objects.filter(project=project).count() == 9
    assert Event.objects.filter(project=other_project).count() == 9


def test_thousand_event_batch_costs_a_fixed_number_of_queries(ingest_client):
    batch = []
    for s in range(50):
        batch.append(generation(f"g{s}", session=f"s{s}", t=0))
        batch.extend(edit(f"g{s}", f"edited {i}", session=f"s{s}", t=i + 1) for i in range(19))
    assert len(batch) == 1000
    with CaptureQueriesContext(connection) as queries:
        response = post(ingest_client, batch)
    assert response.json()["accepted"] == 1000
    # key lookup, last-used, sessions insert + select, events insert (SQLite may split it
    # by its variable limit), generations insert, two link updates, session touch,
    # savepoints: bounded, and independent of the batch size.
    assert len(queries) <= 16, [q["sql"][:80] for q in queries]


def test_a_key_used_within_the_minute_is_not_written_again(ingest_client):
    post(ingest_client, [generation("g1")])
    with CaptureQueriesContext(connection) as queries:
        post(ingest_client, [generation("g2")])
    assert not [q for q in queries if q["sql"].startswith('UPDATE "feedback_apikey"')]
