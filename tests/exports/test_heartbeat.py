"""A live builder keeps its job however long one query takes (issue 9): its heartbeat comes
from a thread of its own, not from between queries; a builder whose job was taken over
stops beating and stops building."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from exports import services
from exports.models import ExportJob
from tests.pg import other_connection, waiting_on_locks
from tests.worker import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BEAT = 0.3  # seconds


@pytest.fixture(autouse=True)
def short_beat(settings, tmp_path):
    settings.GLEANER_EXPORT_HEARTBEAT_SECONDS = BEAT
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def labels_locked() -> Iterator[psycopg.Connection]:
    """Another connection holding the labels table: the build's first query on labels
    waits for it, as for a long lock wait or a slow first fetch. Rolled back to release."""
    blocker = other_connection()
    blocker.execute("LOCK TABLE feedback_label IN ACCESS EXCLUSIVE MODE")
    try:
        yield blocker
    finally:
        blocker.rollback()
        blocker.close()


def _connections_in_use() -> int:
    """Connections of this process's Django threads not given back: taken from the pool
    (the default), or open on the server without it."""
    if connection.settings_dict["OPTIONS"].get("pool"):
        stats = connection.pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def _heartbeat_threads(job: ExportJob) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"export-{job.pk}-heartbeat"]


def _build_in_thread(job: ExportJob) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def build() -> None:
        try:
            outcome["job"] = services.export_build(job=job)
        except Exception as error:  # noqa: BLE001 - handed to the test to assert on
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=build)
    thread.start()
    return thread, outcome


def _claimed(project) -> ExportJob:
    job = ExportJob.objects.create(project=project, format="dpo", file_format="jsonl")
    claimed = services.export_claim(job_id=job.pk)
    assert claimed is not None and claimed.attempts == 1
    return claimed


def test_builder_blocked_in_one_query_keeps_its_job_and_finishes_it(world, project, labels_locked):
    job = _claimed(project)
    claimed_at = job.heartbeat_at
    assert services.stale_after() == 4 * timedelta(seconds=BEAT)
    baseline = _connections_in_use()
    build, outcome = _build_in_thread(job)
    wait_until(waiting_on_locks, what="the build to wait for the labels")
    # Far past the point where a heartbeat from between queries would have gone stale.
    several_beats_past_stale = claimed_at + services.stale_after() + 4 * services.heartbeat_every()
    wait_until(
        lambda: ExportJob.objects.get(pk=job.pk).heartbeat_at > several_beats_past_stale,
        what="the heartbeat to move on while the build is blocked",
    )
    assert build.is_alive() and waiting_on_locks() == 1  # still in its first label query
    assert services.exports_resume_stale() == []  # the sweep hands nothing over
    assert services.export_claim(job_id=job.pk) is None  # nor may a second worker take it
    current = ExportJob.objects.get(pk=job.pk)
    assert (current.status, current.attempts) == ("running", 1)

    labels_locked.rollback()  # the slow query returns
    wait_until(lambda: not build.is_alive(), what="the build to finish")
    assert "error" not in outcome, outcome
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == ("done", 1, "")
    assert job.manifest["rows"] == {"train": 3, "eval": 1}
    assert _heartbeat_threads(job) == []  # stopped with the build
    # The build's and the heartbeat's connections were given back.
    wait_until(lambda: _connections_in_use() == baseline, what="the connections to be closed")


def test_builder_whose_job_was_taken_over_stops_beating_and_building(
    world, project, labels_locked, short_beat
):
    old = _claimed(project)
    build, outcome = _build_in_thread(old)
    wait_until(waiting_on_locks, what="the build to wait for the labels")
    wait_until(
        lambda: ExportJob.objects.get(pk=old.pk).heartbeat_at > old.heartbeat_at,
        what="the blocked build to beat",
    )
    # Another worker claims the job (as if its heartbeat had gone stale): attempts 2.
    later = ExportJob.objects.get(pk=old.pk).heartbeat_at + services.stale_after()
    new = services.export_claim(job_id=old.pk, now=later + timedelta(seconds=1))
    assert new is not None and new.attempts == 2
    # The old lease sees the job is no longer its claim's and stops beating, while its
    # build is still blocked.
    wait_until(lambda: not _heartbeat_threads(old), what="the old lease to stop beating")
    assert build.is_alive() and waiting_on_locks() == 1

    labels_locked.rollback()
    wait_until(lambda: not build.is_alive(), what="the old build to stop")
    assert isinstance(outcome.get("error"), services.ExportTakenOver), outcome
    job = ExportJob.objects.get(pk=old.pk)
    assert (job.status, job.attempts, job.heartbeat_at) == ("running", 2, new.heartbeat_at)
    assert not (short_beat / job.directory / "train.jsonl").exists()  # nothing moved in place
