"""Ingestion's set-based path (feedback.services._store_postgresql on PostgreSQL, the ORM on
SQLite): first-wins generations, staged rows that never outlive their batch, and the race
in which another batch takes an event's id while this one is storing it."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection, connections, transaction

from feedback import services
from feedback.models import Event, Generation, Session
from tests.factories import edit, event, generation
from tests.worker import wait_until


def ids(events: list[dict]) -> set[str]:
    return {e["id"] for e in events}


@pytest.mark.django_db
def test_a_replayed_event_id_naming_another_generation_creates_no_generation(project):
    first = generation("g1")
    services.events_ingest(project=project, events=[first])

    # The same event id, now claiming to be the generation g2: a duplicate, as the log
    # already holds that id, so g2 does not come into being, nor does its edit link.
    result = services.events_ingest(
        project=project, events=[{**first, "generation_id": "g2"}, edit("g2", "Fixed", t=5)]
    )

    assert (result.accepted, result.duplicates) == (1, 1)
    assert list(Generation.objects.values_list("external_id", flat=True)) == ["g1"]
    assert Event.objects.get(type="edit").generation is None


@pytest.mark.django_db
def test_the_first_new_generation_event_for_an_id_makes_the_generation(project):
    stored = generation("g1", output="First answer.")
    services.events_ingest(project=project, events=[stored])
    later = generation("g2", output="From the second event.")
    again = generation("g2", output="From the third event.")

    # The replay of the first event comes first in the batch but is no new event.
    services.events_ingest(
        project=project, events=[{**stored, "generation_id": "g2"}, later, again]
    )

    assert Generation.objects.get(external_id="g2").output == "From the second event."
    assert Event.objects.filter(generation__external_id="g2").count() == 2


@pytest.mark.django_db
def test_batches_in_one_outer_transaction_each_store_only_their_own_events(project):
    first = [generation("g1"), edit("g1", "Fixed", t=5)]
    second = [generation("g2", session="s2"), edit("g2", "Fixed", session="s2", t=5)]

    with transaction.atomic():
        services.events_ingest(project=project, events=first)
        Event.objects.all().delete()  # were the first batch still staged, it would return
        result = services.events_ingest(project=project, events=second)

    assert result.accepted == 2
    assert set(Event.objects.values_list("client_id", flat=True)) == ids(second)


@pytest.mark.django_db
def test_events_link_to_generations_stored_in_the_same_batch_and_before(project):
    services.events_ingest(project=project, events=[edit("g2", "Early", t=50)])
    batch = [
        generation("g1", t=0),
        edit("g1", "Fixed", t=5),
        generation("g2", replaces="g1", t=10),
        event("copy", generation_id="g1", t=20),
    ]

    services.events_ingest(project=project, events=batch)

    assert not Event.objects.filter(generation__isnull=True).exists()
    assert Generation.objects.get(external_id="g2").replaces.external_id == "g1"
    assert Event.objects.filter(generation__external_id="g1").count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_id_taken_by_a_racing_batch_leaves_no_generation_behind(project):
    """Another transaction stores event e1 (as generation g-other) after this batch checked
    that e1 is new and made g-new from it: e1 is a duplicate here, so g-new must go, and
    the edit naming it waits unlinked until a real g-new arrives."""
    session = Session.objects.create(
        project=project,
        external_id="s0",
        first_event_at="2026-11-20T10:00:00Z",
        last_event_at="2026-11-20T10:00:00Z",
    )
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
        password=settings["PASSWORD"] or None, dbname=settings["NAME"],
    )  # fmt: skip
    other.execute(
        "INSERT INTO feedback_event (project_id, client_id, type, timestamp, received_at, "
        "session_id, generation_ref, user_ref, payload) VALUES (%s, 'e1', 'view', now(), "
        "now(), %s, 'g-other', '', '{\"dwell_ms\": 1}')",
        [project.pk, session.pk],
    )  # uncommitted: holds e1's unique index entry
    racing = {**generation("g-new"), "id": "e1"}
    results: list = []

    def ingest() -> None:
        try:
            results.append(
                services.events_ingest(
                    project=project, events=[racing, edit("g-new", "Fixed", t=5)]
                )
            )
        finally:
            connections.close_all()

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        wait_until(
            lambda: _waiting_on_a_lock(exclude=other.info.backend_pid),
            timeout=30,
            what="the batch to wait for e1",
        )
    finally:
        other.commit()
        other.close()
    thread.join(timeout=60)

    assert (results[0].accepted, results[0].duplicates) == (1, 1)
    assert not Generation.objects.filter(external_id="g-new").exists()
    assert Event.objects.get(type="edit").generation is None

    services.events_ingest(project=project, events=[generation("g-new", t=10)])
    assert Event.objects.get(type="edit").generation.external_id == "g-new"


def _waiting_on_a_lock(*, exclude: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> %s",
            [exclude],
        )
        return cursor.fetchone()[0] > 0
