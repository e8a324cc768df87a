"""The event log's references without database constraints (migration 0013): deletes made
through Gleaner still take the events with them, and the ingestion request leaves Python's
cycle collector as it found it, whatever the answer."""

from __future__ import annotations

import gc
import json

import pytest
from django.db import connection

from feedback import services
from feedback.models import Event, Generation, Session
from tests.factories import edit, generation

URL = "/api/v1/events"


def _constraints(table: str) -> set[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {
        f"{','.join(info['columns'])}->{info['foreign_key'][0]}"
        for info in found.values()
        if info["foreign_key"]
    }


@pytest.mark.postgres  # SQLite's introspection of foreign keys differs
@pytest.mark.django_db
def test_only_the_replaces_link_is_a_database_constraint():
    assert _constraints(Event._meta.db_table) == set()
    assert _constraints(Generation._meta.db_table) == {"replaces_id->feedback_generation"}


@pytest.mark.django_db
def test_deleting_a_project_deletes_its_log_sessions_and_generations(project, other_project):
    batch = [generation("g1"), edit("g1", "Fixed", t=5)]
    services.events_ingest(project=project, events=batch)
    services.events_ingest(project=other_project, events=batch)

    project.delete()

    for model in (Event, Generation, Session):
        assert not model.objects.filter(project_id=project.pk).exists()
        assert model.objects.filter(project=other_project).count() > 0


@pytest.mark.django_db
def test_deleting_a_generation_unlinks_its_events(project):
    services.events_ingest(project=project, events=[generation("g1"), edit("g1", "Fixed", t=5)])

    Generation.objects.get(external_id="g1").delete()

    assert Event.objects.filter(project=project).count() == 2
    assert not Event.objects.filter(generation__isnull=False).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status"),
    [
        (json.dumps({"events": [generation("g1")]}), 200),
        (json.dumps({"events": [{"id": "e1"}]}), 207),
        ("{not json", 400),
        (json.dumps({"events": "none"}), 400),
    ],
)
def test_the_request_leaves_the_cycle_collector_enabled(ingest_client, body, status):
    assert gc.isenabled()

    response = ingest_client.post(URL, data=body, content_type="application/json")

    assert response.status_code == status
    assert gc.isenabled()


@pytest.mark.django_db
def test_the_request_leaves_a_disabled_collector_disabled(ingest_client):
    gc.disable()
    try:
        response = ingest_client.post(
            URL, data=json.dumps({"events": [generation("g1")]}), content_type="application/json"
        )
        assert response.status_code == 200
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.postgres  # lz4 is PostgreSQL's (Debian's and CI's servers are built with it)
@pytest.mark.django_db
def test_long_texts_are_stored_with_lz4_and_read_back_the_same(project):
    assert services._server_has_lz4()
    output = " ".join(f"Sentence {n} of a long answer, as models give them." for n in range(200))
    services.events_ingest(project=project, events=[generation("g1", output=output)])

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(e.payload), pg_column_compression(g.output) "
            "FROM feedback_event e JOIN feedback_generation g ON g.id = e.generation_id"
        )
        assert cursor.fetchall() == [("lz4", "lz4")]
    assert Generation.objects.get().output == output
    assert Event.objects.get().payload["output"] == output
