from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from feedback import services
from tests.conftest import token_client
from tests.factories import one_of_each

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingested(project):
    services.events_ingest(project=project, events=one_of_each("s1"))


def url(session: str = "s1", project: str = "acme") -> str:
    return f"/api/v1/sessions/{session}?project={project}"


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
