"""Derivation's reads and writes in bulk (feedback/derive_io.py): the same labels, signals
and review items however often and in whatever chunks sessions are derived, and a number
of queries per chunk that does not grow with the chunk."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from feedback import derive_io, labelling, services
from feedback.models import Generation, Label, Session
from review.models import Item
from tests.factories import BASE_TIME, CORRECTED, OUTPUT, edit, event, generation

pytestmark = pytest.mark.django_db
# Queries to derive one chunk of one project, whatever its size: savepoints, locking,
# policy and calibration (10), three reads, four writes, and review's routing of the labels
# (about 30 the first time, when it creates the project's four queues).
CHUNK_QUERIES = 60


def simulate(project, *, sessions: int, seed: int) -> None:
    """Hard simulated traffic (it sends some actions in a later session), timed out."""
    from demo.traffic import simulate_traffic

    traffic = simulate_traffic(sessions=sessions, seed=seed, batch_size=500, hard=True)
    for batch in traffic.batches:
        assert services.events_ingest(project=project, events=batch).rejected == 0
    labelling.sessions_mark_abandoned(now=BASE_TIME + timedelta(days=400))


def derive_all(limit: int = labelling.DERIVE_CHUNK) -> int:
    total = 0
    while done := labelling.sessions_derive_pending(limit=limit):
        total += done
    return total


def snapshot(project) -> dict[str, list]:
    """Everything derivation writes, but the time it wrote it (`derived_at`)."""
    derived = [
        f.attname
        for f in Label._meta.concrete_fields
        if f.name not in ("derived_at", "review_outcome", "review_note")
    ]
    return {
        "labels": list(Label.objects.filter(project=project).order_by("pk").values_list(*derived)),
        "signals": list(
            Generation.objects.filter(project=project).order_by("pk").values_list("pk", "signals")
        ),
        "sessions": list(
            Session.objects.filter(project=project)
            .order_by("pk")
            .values_list("pk", "outcome", "outcome_signal", "retries", "derived_changes")
        ),
        "items": list(
            Item.objects.filter(label__project=project)
            .order_by("pk")
            .values_list("pk", "queue_id", "label_id", "reason", "reason_detail", "status")
        ),
    }


def test_rederiving_the_same_sessions_gives_identical_labels_signals_and_items(project):
    simulate(project, sessions=40, seed=5)
    assert derive_all() == Session.objects.count()
    first = snapshot(project)
    assert len(first["labels"]) > 40 and first["items"]
    assert {"edit_correction", "session_abandoned", "regenerate_then_action"} <= {
        rule for (rule,) in Label.objects.values_list("rule")
    }

    labelling.project_rederive(projects=[project])
    assert derive_all() == Session.objects.count()
    assert snapshot(project) == first

    # One session at a time (as after a failed chunk) writes exactly what a chunk wrote.
    labelling.project_rederive(projects=[project])
    assert derive_all(limit=1) == Session.objects.count()
    assert snapshot(project) == first


def test_a_backlog_is_derived_whole_and_as_chunk_by_chunk(project, monkeypatch):
    simulate(project, sessions=30, seed=5)
    total = Session.objects.count()
    assert derive_all() == total
    first = snapshot(project)
    monkeypatch.setattr(labelling, "DERIVE_CHUNK", 7)
    labelling.project_rederive(projects=[project])
    assert labelling.sessions_derive_backlog() == (total, False)
    assert snapshot(project) == first
    assert not Session.objects.filter(changes__gt=F("derived_changes")).exists()


def test_a_backlog_stops_at_its_time_and_says_more_is_pending(project, monkeypatch):
    simulate(project, sessions=30, seed=5)
    total = Session.objects.count()
    monkeypatch.setattr(labelling, "DERIVE_CHUNK", 7)
    # Out of time after the first chunk: it is committed, the rest left for the next task.
    assert labelling.sessions_derive_backlog(seconds=0) == (7, True)
    assert Session.objects.filter(changes__gt=F("derived_changes")).count() == total - 7
    assert labelling.sessions_derive_backlog() == (total - 7, False)
    assert labelling.sessions_derive_backlog() == (0, False)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backlog_is_derived_on_two_connections_outside_a_transaction(project, monkeypatch):
    """Once the first chunk comes back full, a second connection derives chunks alongside;
    the result is what one connection derives."""
    simulate(project, sessions=40, seed=9)
    total = Session.objects.count()
    monkeypatch.setattr(labelling, "DERIVE_CHUNK", 5)
    assert labelling.sessions_derive_backlog(project=project) == (total, False)
    first = snapshot(project)
    threads: list[str] = []
    derive = labelling.sessions_derive_pending

    def noted(**kwargs: Any) -> int:  # the real chunk, noting the thread it ran on
        taken = derive(**kwargs)
        if taken:
            threads.append(threading.current_thread().name)
        return taken

    monkeypatch.setattr(labelling, "sessions_derive_pending", noted)
    labelling.project_rederive(projects=[project])
    assert labelling.sessions_derive_backlog(project=project) == (total, False)
    assert len(set(threads)) == 2 and threads[0] == threading.current_thread().name
    assert snapshot(project) == first


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_error_on_one_connection_waits_for_the_other_before_it_is_raised(project, monkeypatch):
    simulate(project, sessions=30, seed=9)
    monkeypatch.setattr(labelling, "DERIVE_CHUNK", 3)
    derive_until = labelling._derive_until  # noqa: SLF001

    def failing_here(deadline: float, project: Any) -> tuple[int, bool]:
        if threading.current_thread() is threading.main_thread():
            raise RuntimeError("this connection failed")
        return derive_until(deadline, project)  # the helper derives all that is left

    monkeypatch.setattr(labelling, "_derive_until", failing_here)
    with pytest.raises(RuntimeError, match="this connection failed"):
        labelling.sessions_derive_backlog(project=project)
    # Raised only once the helper was done: nothing it took is left half-way.
    assert not Session.objects.filter(changes__gt=F("derived_changes")).exists()


def test_sessions_of_a_chunk_keep_their_own_labels(project):
    services.events_ingest(
        project=project,
        events=[
            generation("g1", session="s1", output=OUTPUT),
            edit("g1", CORRECTED, session="s1", t=30),
            generation("g2", session="s2", output=OUTPUT),
            event("copy", generation_id="g2", session="s2", t=9),
        ],
    )
    assert derive_all() == 2
    labels = Label.objects.order_by("key")
    assert [(label.session.external_id, label.key) for label in labels] == [
        ("s2", "accept:g2"),
        ("s1", "edit:g1"),
    ]
    assert all(label.generation.session_id == label.session_id for label in labels)
    assert labels.get(key="edit:g1").chosen == CORRECTED
    assert labels.get(key="accept:g2").completion == OUTPUT


def test_a_superseded_label_is_deactivated_and_handed_to_review_once_more(project):
    services.events_ingest(
        project=project,
        events=[generation("g1", output=OUTPUT), event("copy", generation_id="g1", t=9)],
    )
    derive_all()
    accept = Label.objects.get(key="accept:g1")
    services.events_ingest(project=project, events=[edit("g1", CORRECTED, t=30)])
    derive_all()
    accept.refresh_from_db()
    assert not accept.active and accept.derived_at > accept.occurred_at
    assert list(Label.objects.filter(active=True).values_list("key", flat=True)) == ["edit:g1"]
    # Re-deriving again deactivates nothing more and re-activates nothing.
    labelling.project_rederive(projects=[project])
    derive_all()
    assert list(Label.objects.filter(active=False).values_list("key", flat=True)) == ["accept:g1"]


@pytest.mark.postgres
@pytest.mark.parametrize("sessions", [4, 60])
def test_a_chunk_costs_a_bounded_number_of_queries_whatever_its_size(
    project, sessions, django_assert_max_num_queries
):
    simulate(project, sessions=sessions, seed=11)
    pending = Session.objects.count()
    assert pending <= labelling.DERIVE_CHUNK
    with django_assert_max_num_queries(CHUNK_QUERIES):
        assert labelling.sessions_derive_pending() == pending
    assert Label.objects.filter(project=project).exists()


@pytest.mark.postgres
def test_reading_events_own_and_sent_elsewhere_uses_indexes_not_a_scan(project):
    simulate(project, sessions=20, seed=2)
    ids = list(Session.objects.values_list("pk", flat=True))
    with connection.cursor() as cursor:  # tiny tables: make a scan cost what it would at scale
        cursor.execute("SET LOCAL enable_seqscan = off")
    with derive_io._binding_cursor() as cursor:  # noqa: SLF001 - the statement derivation runs
        cursor.execute("EXPLAIN " + derive_io._events_sql(), [ids, ids])  # noqa: SLF001
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    # The hard traffic sends some edits in a later session: the second part finds them.
    assert list(derive_io.events_sent_elsewhere(ids))
    # A chunk reads what its sessions read one by one.
    together = derive_io.events_of(ids)
    assert {pk: sorted(map(repr, events)) for pk, events in together.items()} == {
        pk: sorted(map(repr, derive_io.events_of([pk])[pk])) for pk in ids if together.get(pk)
    }


def test_rederiving_rewrites_only_the_signals_that_changed(project):
    services.events_ingest(
        project=project,
        events=[generation("g1", output=OUTPUT), generation("g2", session="s2", output=OUTPUT)],
    )
    derive_all()
    assert Generation.objects.get(external_id="g1").signals["copied"] is False
    services.events_ingest(project=project, events=[event("copy", generation_id="g1", t=9)])
    labelling.project_rederive(projects=[project])
    with CaptureQueriesContext(connection) as queries:
        assert derive_all() == 2
    assert Generation.objects.get(external_id="g1").signals["copied"] is True
    assert Generation.objects.get(external_id="g2").signals["copied"] is False
    assert len([q for q in queries if q["sql"].startswith('UPDATE "feedback_generation"')]) == 1

    labelling.project_rederive(projects=[project])
    with CaptureQueriesContext(connection) as queries:
        assert derive_all() == 2
    assert not [q for q in queries if q["sql"].startswith('UPDATE "feedback_generation"')]


def test_signals_changed_compares_json_types_not_only_python_equality():
    assert not derive_io.signals_changed('{"a": 1, "b": true}', {"a": 1, "b": True})
    assert derive_io.signals_changed('{"a": 1}', {"a": 1.0})
    assert derive_io.signals_changed({"b": 1}, {"b": True})
    assert derive_io.signals_changed("{}", {"a": 1})
    assert derive_io.signals_changed({"a": 1}, {"a": 1, "b": 2})
    assert not derive_io.signals_changed("{}", {})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_derivation_settings_hold_for_its_transaction_only(project):
    from django.db import transaction

    def show(name: str) -> str:
        with connection.cursor() as cursor:
            cursor.execute(f"SHOW {name}")
            return cursor.fetchone()[0]

    before = show("max_parallel_workers_per_gather")
    assert before != "0"
    with transaction.atomic():
        derive_io.transaction_settings()
        assert show("max_parallel_workers_per_gather") == "0"
        assert show("default_toast_compression") == "lz4"  # the servers here have it
    assert show("max_parallel_workers_per_gather") == before


@pytest.mark.postgres
def test_the_binding_cursor_reads_timestamps_as_django_does():
    sql = "SELECT %s::timestamptz, %s::timestamptz, NULL::timestamptz"
    params = [datetime(1, 1, 1, tzinfo=UTC), datetime(2026, 12, 3, 13, 5, 7, 123456, tzinfo=UTC)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        django_row = cursor.fetchone()
    with derive_io.binding_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        loader = cursor.cursor.adapters.get_loader(1184, psycopg.pq.Format.TEXT)
    assert row == django_row == (*params, None)
    assert [value.tzinfo for value in row[:2]] == [UTC, UTC]
    assert "django" not in loader.__module__  # psycopg's own, not Django's wrapper
