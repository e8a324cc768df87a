"""Actions sent in a later session than their generation (the user came back the next day)
are derived with the generation's session, through the HTTP ingestion API."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from feedback import derive_io, labelling
from feedback.models import Event, Label, Session
from tests.factories import CORRECTED, OUTPUT, edit, event, generation

URL = "/api/v1/events"
DAY = 86_400
pytestmark = pytest.mark.django_db


def post(client: APIClient, events: list[dict]) -> None:
    response = client.post(URL, {"events": events}, format="json")
    assert response.status_code == 200, response.json()


def derive_all() -> int:
    total = 0
    while done := labelling.sessions_derive_pending():
        total += done
    return total


def session_labels(session: str) -> list[tuple[str, str]]:
    return sorted(
        Label.objects.filter(active=True, session__external_id=session).values_list("key", "rule")
    )


def pending(session: str) -> bool:
    return Session.objects.filter(external_id=session, changes__gt=F("derived_changes")).exists()


def test_edit_in_a_later_session_becomes_an_edit_label_of_the_generations_session(
    ingest_client,
):
    post(ingest_client, [generation("g1", session="monday", output=OUTPUT)])
    derive_all()
    assert session_labels("monday") == []

    post(ingest_client, [edit("g1", CORRECTED, session="tuesday", t=DAY)])
    assert pending("monday"), "the generation's session must be derived again"
    derive_all()

    assert session_labels("monday") == [("edit:g1", "edit_correction")]
    pair = Label.objects.get(key="edit:g1")
    assert (pair.chosen, pair.rejected) == (CORRECTED, OUTPUT)
    assert session_labels("tuesday") == []
    # Its own span is the later session's; the generation's session keeps its own.
    monday = Session.objects.get(external_id="monday")
    assert monday.last_event_at == monday.first_event_at
    assert not pending("monday") and not pending("tuesday")


def test_edit_sent_before_its_generation_from_another_session_is_derived_when_it_arrives(
    ingest_client,
):
    post(ingest_client, [edit("g1", CORRECTED, session="tuesday", t=DAY)])
    derive_all()
    assert Label.objects.count() == 0

    post(ingest_client, [generation("g1", session="monday", output=OUTPUT)])
    derive_all()

    assert session_labels("monday") == [("edit:g1", "edit_correction")]
    assert session_labels("tuesday") == []


def test_the_later_session_labels_only_its_own_generations(ingest_client):
    post(
        ingest_client,
        [
            generation("g1", session="monday", output=OUTPUT),
            event("session_outcome", session="monday", t=60, outcome="abandoned"),
        ],
    )
    derive_all()
    assert session_labels("monday") == [("outcome:g1", "session_abandoned")]
    before = Label.objects.get(key="outcome:g1").confidence

    post(
        ingest_client,
        [
            generation("h1", session="tuesday", t=DAY, output="A new answer on Tuesday."),
            edit("g1", CORRECTED, session="tuesday", t=DAY + 10),
            event("copy", generation_id="g1", session="tuesday", t=DAY + 20),
            event("rating", generation_id="g1", session="tuesday", t=DAY + 30, value=-1),
            event("regenerate", generation_id="g1", session="tuesday", t=DAY + 40),
            event("session_outcome", session="tuesday", t=DAY + 60, outcome="completed"),
        ],
    )
    derive_all()

    # The actions on g1 are Monday's evidence; Tuesday's outcome is not Monday's.
    assert session_labels("monday") == [
        ("edit:g1", "edit_correction"),
        ("outcome:g1", "session_abandoned"),
        ("rating:g1", "explicit_rating"),
    ]
    assert Session.objects.get(external_id="monday").outcome == Session.Outcome.ABANDONED
    # Acted on after all: the abandoned negative is weaker now.
    assert Label.objects.get(key="outcome:g1").confidence < before
    # Tuesday: its own generation's outcome only, nothing about g1, no regeneration.
    assert session_labels("tuesday") == [("outcome:h1", "session_completed")]
    assert Session.objects.get(external_id="tuesday").retries == 0


def test_copy_in_a_later_session_is_an_acceptance_of_the_earlier_generation(ingest_client):
    post(ingest_client, [generation("g1", session="monday", output=OUTPUT)])
    post(ingest_client, [event("copy", generation_id="g1", session="tuesday", t=DAY)])
    derive_all()

    assert session_labels("monday") == [("accept:g1", "copy_accept")]
    assert session_labels("tuesday") == []


def test_one_batch_touching_many_earlier_sessions_costs_one_session_update(ingest_client):
    post(ingest_client, [generation(f"g{i}", session=f"day1-{i}") for i in range(30)])
    derive_all()
    later = [edit(f"g{i}", f"{CORRECTED} ({i})", session="day2", t=DAY) for i in range(30)]
    with CaptureQueriesContext(connection) as queries:
        post(ingest_client, later)
    touches = [q for q in queries if q["sql"].startswith('UPDATE "feedback_session"')]
    assert len(touches) == 1
    assert Session.objects.filter(changes__gt=F("derived_changes")).count() == 31

    assert derive_all() == 31
    assert Label.objects.filter(rule="edit_correction").count() == 30
    assert set(Label.objects.values_list("session__external_id", flat=True).distinct()) == {
        f"day1-{i}" for i in range(30)
    }


def test_derivation_reads_other_sessions_events_in_one_query_per_chunk(ingest_client):
    for i in range(20):
        post(ingest_client, [generation(f"g{i}", session=f"day1-{i}")])
        post(ingest_client, [edit(f"g{i}", CORRECTED, session=f"day2-{i}", t=DAY)])
    with CaptureQueriesContext(connection) as queries:
        assert labelling.sessions_derive_pending() == 40
    event_reads = [
        q for q in queries if q["sql"].startswith("SELECT") and '"feedback_event"' in q["sql"]
    ]
    # The chunk's own events, and those sent elsewhere: one statement on PostgreSQL.
    assert len(event_reads) == (1 if connection.vendor == "postgresql" else 2)
    assert Label.objects.filter(rule="edit_correction").count() == 20
    assert Event.objects.filter(type="edit", generation__isnull=False).count() == 20


@pytest.mark.postgres
def test_the_portable_read_of_events_sent_elsewhere_uses_indexes(ingest_client):
    for i in range(5):
        post(ingest_client, [generation(f"g{i}", session=f"day1-{i}")])
        post(ingest_client, [edit(f"g{i}", CORRECTED, session=f"day2-{i}", t=DAY)])
    ids = list(Session.objects.values_list("pk", flat=True))
    with connection.cursor() as cursor:  # tiny tables: make a scan cost what it would at scale
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = derive_io.events_sent_elsewhere(ids).explain()
    assert "Seq Scan" not in plan, plan
    assert len(list(derive_io.events_sent_elsewhere(ids))) == 5
