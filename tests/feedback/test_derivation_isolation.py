"""One failing session never stops derivation: it is marked, logged, retried with backoff,
and the other sessions (of every project) are derived in the same run."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.scheduling import schedule_debounced
from feedback import labelling, services
from feedback.derivation import (
    DWELL_MAX_MS,
    REGENERATE_BASE,
    REGENERATE_DWELL_BONUS,
    EventRecord,
    GenerationRecord,
    Policy,
    derive_session,
)
from feedback.models import Event, Label, Session
from tests.factories import BASE_TIME, event, generation
from tests.worker import free_port, use_broker

pytestmark = pytest.mark.django_db

OUTPUT = "Revenue grew four percent, led by the new subscription tier; costs were flat."


def ingest(project, events):
    result = services.events_ingest(project=project, events=events)
    assert result.rejected == 0, result.errors
    return result


def store_year_one_timestamp(session: Session) -> None:
    """What "0001-01-01T00:00:00+05:00" became once stored: PostgreSQL keeps it as a BC
    timestamp, which reading back raises DataError; SQLite keeps the text of year 0,
    which Python cannot read either. Written with SQL: ingestion now refuses it."""
    bad = (
        "0001-01-01T00:00:00+05:00" if connection.vendor == "postgresql" else "0000-12-31 19:00:00"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE feedback_generation SET created_at = %s WHERE session_id = %s",
            [bad, session.pk],
        )


def sessions(project) -> dict[str, Session]:
    return {s.external_id: s for s in Session.objects.filter(project=project)}


def test_a_failing_session_is_marked_and_other_projects_are_derived_in_the_same_run(
    project, other_project, caplog
):
    ingest(project, [generation("g1", session="broken", output=OUTPUT)])
    ingest(project, [generation("g2", session="fine", output=OUTPUT)])
    broken = sessions(project)["broken"]
    store_year_one_timestamp(broken)
    ingest(other_project, [generation("g1", session="newer", output=OUTPUT)])

    with caplog.at_level(logging.WARNING, logger="feedback.labelling"):
        assert labelling.sessions_derive_pending() == 3

    broken.refresh_from_db()
    assert broken.changes > broken.derived_changes  # still pending
    assert broken.derive_failures == 1
    assert broken.derive_error.startswith("DataError" if connection.vendor == "postgresql" else "")
    assert broken.derive_error
    assert broken.derive_retry_at > timezone.now() + timedelta(seconds=50)
    assert f"Deriving session {broken.pk} of project {project.pk} failed" in caplog.text
    for other in [sessions(project)["fine"], sessions(other_project)["newer"]]:
        assert other.derived_changes == other.changes and other.derive_failures == 0
    # Until its retry time the failing session is not taken again: the sweep moves on.
    ingest(other_project, [generation("g2", session="newest", output=OUTPUT)])
    assert labelling.sessions_derive_pending() == 1
    assert labelling.sessions_derive_pending() == 0


def test_a_failed_session_is_retried_after_its_backoff_and_success_clears_the_marks(project):
    ingest(project, [generation("g1", session="broken", output=OUTPUT)])
    broken = Session.objects.get()
    store_year_one_timestamp(broken)
    labelling.sessions_derive_pending()
    Session.objects.filter(pk=broken.pk).update(derive_retry_at=timezone.now())  # time passes
    assert labelling.sessions_derive_pending() == 1  # retried, failed again
    broken.refresh_from_db()
    assert broken.derive_failures == 2
    assert broken.derive_retry_at > timezone.now() + timedelta(seconds=110)  # doubled

    # The data is repaired (or the code fixed), and an operator asks for a retry now.
    project.generations.update(created_at=BASE_TIME)
    assert labelling.sessions_retry_derivation(sessions=Session.objects.all()) == 1
    assert labelling.sessions_derive_pending() == 1
    broken.refresh_from_db()
    assert broken.derived_changes == broken.changes
    assert (broken.derive_failures, broken.derive_error, broken.derive_retry_at) == (0, "", None)


def test_retry_backoff_doubles_and_is_capped():
    delays = [labelling.derive_retry_delay(n) for n in (1, 2, 3, 9, 10, 1000)]
    assert delays[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert delays[3] == timedelta(minutes=256)
    assert delays[4] == delays[5] == labelling.RETRY_MAX == timedelta(hours=6)


def test_a_huge_dwell_on_a_regenerated_chain_derives_with_a_clamped_dwell(project):
    ingest(
        project,
        [
            generation("g1", output=OUTPUT, t=0),
            event("regenerate", generation_id="g1", t=5),
            generation("g2", output=OUTPUT.upper(), replaces="g1", t=6),
            event("view", generation_id="g2", dwell_ms=1200, t=7),
            event("copy", generation_id="g2", t=20),
        ],
    )
    # Stored before validation was tightened: "dwell_ms": 1 followed by 400 zeros.
    view = Event.objects.get(type="view")
    view.payload = {"dwell_ms": 10**400}
    view.save(update_fields=["payload"])

    assert labelling.sessions_derive_pending() == 1
    session = Session.objects.get()
    assert session.derived_changes == session.changes and session.derive_failures == 0
    # Beyond the float range is no measurement: treated as missing, so no dwell bonus.
    pair = Label.objects.get(source="regenerate")
    assert pair.confidence == REGENERATE_BASE["copy"]
    assert project.generations.get(external_id="g2").signals["dwell_ms"] == 0

    view.payload = {"dwell_ms": 1e300}  # a float: finite, clamped to a day of reading
    view.save(update_fields=["payload"])
    labelling.project_rederive(projects=[project])
    assert labelling.sessions_derive_pending() == 1
    pair.refresh_from_db()
    assert pair.confidence == pytest.approx(REGENERATE_BASE["copy"] + REGENERATE_DWELL_BONUS)
    assert project.generations.get(external_id="g2").signals["dwell_ms"] == DWELL_MAX_MS


def test_chunks_are_shared_fairly_across_projects(project, other_project):
    ingest(project, [generation("g1", session=f"backlog-{n}") for n in range(10)])
    ingest(other_project, [generation("g1", session=f"new-{n}") for n in range(2)])

    assert labelling.sessions_derive_pending(limit=4) == 4
    derived = Session.objects.filter(derived_at__isnull=False)
    assert derived.filter(project=project).count() == 2
    assert derived.filter(project=other_project).count() == 2
    # A share one project cannot fill goes to the others.
    assert labelling.sessions_derive_pending(limit=5) == 5
    assert derived.filter(project=project).count() == 7
    assert labelling.sessions_derive_pending(limit=5) == 3  # fewer than asked: all done


def test_admin_lists_failing_sessions_and_retries_them(project, admin_client):
    ingest(project, [generation("g1", session="broken"), generation("g1", session="fine")])
    broken = sessions(project)["broken"]
    store_year_one_timestamp(broken)
    labelling.sessions_derive_pending()

    page = admin_client.get("/admin/feedback/session/", {"derivation": "failing"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [broken]
    response = admin_client.post(
        "/admin/feedback/session/",
        {"action": "retry_derivation", "_selected_action": [broken.pk]},
    )
    assert response.status_code == 302
    broken.refresh_from_db()
    assert broken.derive_retry_at is None and broken.derive_failures == 1


def test_scheduling_with_redis_down_logs_and_returns_and_the_events_stay_stored(
    project, settings, caplog, django_capture_on_commit_callbacks
):
    """Ingestion commits, then schedules: with the cache (Redis) down it used to raise and
    the request answered 500 although its events were stored."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }
    with (
        caplog.at_level(logging.WARNING, logger="core.scheduling"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        result = ingest(project, [generation("g1")])
    assert callbacks and result.accepted == 1
    assert "the cache is unavailable" in caplog.text
    assert Session.objects.get().changes > Session.objects.get().derived_changes  # the sweep's


def test_scheduling_with_the_broker_down_drops_its_mark_so_the_next_call_tries_again(caplog):
    from feedback.tasks import derive_pending_sessions

    def enqueue() -> None:
        derive_pending_sessions.apply_async(countdown=5)

    mark = "gleaner:test-schedule-broker-down"
    with (
        use_broker(f"redis://127.0.0.1:{free_port()}/0"),
        caplog.at_level(logging.WARNING, logger="core.scheduling"),
    ):
        assert schedule_debounced(mark=mark, window=60, enqueue=enqueue) is False
    assert "the broker is unavailable" in caplog.text
    calls: list[int] = []
    assert schedule_debounced(mark=mark, window=60, enqueue=lambda: calls.append(1)) is True
    assert schedule_debounced(mark=mark, window=60, enqueue=lambda: calls.append(1)) is False
    assert calls == [1]  # debounced inside the window


# Any JSON a client could have sent, including what Python parses but no float can hold.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.sampled_from([10**400, -(10**400), 2**63, 2**40])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = ["dwell_ms", "value", "text", "comment", "outcome", "signal"]
payloads = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)
TYPES = ["view", "rating", "copy", "edit", "share", "regenerate", "session_outcome"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(TYPES), payloads), max_size=8))
def test_derivation_never_raises_on_a_stored_payload(stored):
    start = datetime(2026, 11, 20, tzinfo=UTC)
    generations = [
        GenerationRecord("g1", [{"role": "user", "content": "Hi"}], OUTPUT, "m", None, start),
        GenerationRecord("g2", [{"role": "user", "content": "Hi"}], OUTPUT[::-1], "m", "g1", start),
    ]
    events = [
        EventRecord(f"e{n}", kind, start + timedelta(seconds=n), ("g1", "g2")[n % 2], payload)
        for n, (kind, payload) in enumerate(stored)
    ]
    result = derive_session(generations=generations, events=events, policy=Policy())
    for label in result.labels:
        assert 0.0 <= label.confidence <= 1.0
        json.dumps(label.signals, allow_nan=False)  # storable as jsonb
    for signals in result.generations.values():
        assert 0 <= signals.dwell_ms <= DWELL_MAX_MS
    assert result.session.outcome_signal is None or isinstance(result.session.outcome_signal, str)
