from __future__ import annotations

from urllib.parse import quote

import pytest
from django.db import connection
from rest_framework.test import APIClient

from feedback import services
from tests.conftest import token_client
from tests.factories import event, generation, one_of_each

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingested(project):
    services.events_ingest(project=project, events=one_of_each("s1"))


def url(session: str = "s1", project: str = "acme") -> str:
    return f"/api/v1/sessions/{session}?project={project}"


def quoted_url(session_id: str, project: str = "acme") -> str:
    """The URL of a session as clients should build it: the id percent-encoded, '/' too."""
    return f"/api/v1/sessions/{quote(session_id, safe='')}?project={quote(project, safe='')}"


def test_member_reads_session_with_generations_in_order_and_events(ingested, mel):
    response = token_client(mel).get(url())
    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == "s1"
    assert [g["generation_id"] for g in body["generations"]] == ["g1", "g2"]
    assert body["generations"][0]["final_text"] == "The report says revenue grew 5% in Q3."
    assert body["generations"][1]["replaces"] == "g1"
    assert [e["type"] for e in body["events"]][:3] == ["generation", "edit", "regenerate"]
    assert body["events"][-1]["outcome"] == "completed"


def test_annotator_cannot_browse_raw_sessions(ingested, alice):
    assert token_client(alice).get(url()).status_code == 404


def test_member_of_another_project_gets_404(ingested, owen):
    assert token_client(owen).get(url()).status_code == 404
    assert token_client(owen).get(url(project="globex")).status_code == 404


def test_unknown_session_is_404(ingested, mel):
    assert token_client(mel).get(url("nope")).status_code == 404


def test_missing_project_parameter_is_400_naming_it(ingested, mel):
    response = token_client(mel).get("/api/v1/sessions/s1")
    assert response.status_code == 400
    assert "project" in response.json()["errors"]


def test_anonymous_is_refused(ingested):
    assert APIClient().get(url()).status_code == 401


def test_ingestion_key_cannot_read(ingested, ingest_client):
    assert ingest_client.get(url()).status_code == 401


def test_session_shows_derived_signals_and_labels_with_status(ingested, mel, project):
    from feedback import labelling

    labelling.sessions_derive_pending()
    body = token_client(mel).get(url()).json()
    assert body["outcome"] == "completed" and body["retries"] == 1
    g1, g2 = body["generations"]
    assert g1["signals"]["regenerated"] is True and g1["signals"]["edits"] == 1
    assert g2["signals"]["copied"] is True and g2["signals"]["dwell_ms"] == 5400
    kinds = {(label["kind"], label["source"]) for g in (g1, g2) for label in g["labels"]}
    # g1 was edited, so it is an edit pair rather than the rejected side of a regenerate
    # pair; g2 was shared (strong acceptance); the rating is kept apart.
    assert kinds == {("preference_pair", "edit"), ("completion", "share"), ("rating", "rating")}
    statuses = {label["status"] for g in (g1, g2) for label in g["labels"]}
    assert statuses <= {"auto_accepted", "in_review"}


def test_session_read_costs_a_fixed_number_of_queries(ingested, mel, django_assert_max_num_queries):
    from feedback import labelling

    labelling.sessions_derive_pending()
    client = token_client(mel)
    with django_assert_max_num_queries(8):
        assert client.get(url()).status_code == 200


def test_final_text_agrees_with_derivation_when_edits_share_a_timestamp(project, mel):
    from feedback import labelling
    from feedback.models import Label
    from tests.factories import edit, generation

    output = "The report says revenue grew four percent in the third quarter of the year."
    # Same timestamp; evt-b is stored first, but sorts after evt-a, so derivation (ties
    # broken by event id) takes evt-b as the latest edit, and so must the API.
    later = edit("g1", output.replace("four", "five"), t=9, id="evt-b")
    earlier = edit("g1", output.replace("four", "six"), t=9, id="evt-a")
    services.events_ingest(project=project, events=[generation("g1", output=output), later])
    services.events_ingest(project=project, events=[earlier])
    labelling.sessions_derive_pending()
    body = token_client(mel).get(url()).json()
    pair = Label.objects.get(source="edit")
    assert body["generations"][0]["final_text"] == pair.chosen == later["text"]


READABLE_IDS = [
    "a/b",
    "/leading",
    "trailing/",
    "a//b",
    "what?",
    "tag#1",
    "100%",
    "%2F",
    "with space",
    " padded ",
    "日本語のセッション",
    "emoji \U0001f600 and ZWJ \U0001f469\u200d\U0001f4bb",
    "a+b&c=d",
    "...",
    "a.b/c.d",
]


@pytest.mark.parametrize("session_id", READABLE_IDS)
def test_every_accepted_session_id_can_be_read_back(project, mel, session_id):
    result = services.events_ingest(project=project, events=[generation("g1", session=session_id)])
    assert result.accepted == 1
    read = token_client(mel).get(quoted_url(session_id))
    assert read.status_code == 200, read.content[:300]
    assert read.json()["session_id"] == session_id


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/sessions/s1?project=%00",
        "/api/v1/sessions/s1?project=%ED%A0%80",
        "/api/v1/sessions/s1?project=acme%00",
        "/api/v1/sessions/%00?project=acme",
        "/api/v1/sessions/s%00?project=acme",
        "/api/v1/sessions/%ED%A0%80?project=acme",
        "/api/v1/sessions/%FF?project=acme",
    ],
)
def test_unstorable_text_in_the_session_url_is_404(ingested, mel, url):
    assert token_client(mel).get(url).status_code == 404


def test_a_session_with_unreadable_stored_timestamps_is_still_served(project, mel):
    """Rows stored before ingestion refused such dates must not make the session a 500."""
    view = event("view", generation_id="g1", dwell_ms=1, id="evt-view")
    services.events_ingest(project=project, events=[generation("g1", id="evt-gen"), view])
    if connection.vendor == "postgresql":
        bc, far = "'0001-01-01 00:00:00+05'", "'10000-01-01 00:00:00+00'"
    else:  # Django stores UTC as text on SQLite, where a far-future year cannot sort last
        bc, far = "'0000-12-31 19:00:00'", "'0000-12-31 19:00:01'"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE feedback_event SET timestamp = {bc} WHERE type = 'generation'")  # noqa: S608
        cursor.execute(f"UPDATE feedback_event SET timestamp = {far} WHERE type = 'view'")  # noqa: S608
        cursor.execute(f"UPDATE feedback_generation SET created_at = {bc}")  # noqa: S608
        cursor.execute(f"UPDATE feedback_session SET first_event_at = {bc}")  # noqa: S608
        cursor.execute(f"UPDATE feedback_session SET last_event_at = {far}")  # noqa: S608
    response = token_client(mel).get(quoted_url("s1"))
    assert response.status_code == 200
    body = response.json()
    assert body["first_event_at"] is None and body["last_event_at"] is None
    assert body["generations"][0]["created_at"] is None
    assert [e["timestamp"] for e in body["events"]] == [None, None]
    assert [e["type"] for e in body["events"]] == ["generation", "view"]
