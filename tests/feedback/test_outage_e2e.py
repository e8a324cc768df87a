"""A Redis outage in the middle of ingestion, with a real worker and beat on a Redis of the
test's own: every event acknowledged to a client is derived once Redis is back, without
restarting the worker."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request

import pytest
from django.db.models import F

from feedback import services
from feedback.models import Session
from feedback.tasks import derive_pending_sessions
from tests.factories import event, generation
from tests.worker import use_broker, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ACKNOWLEDGED = (200, 207)
BACKLOG = 2000  # sessions pending when Redis goes: a task is busy deriving them (several chunks,
# so a beat sweep that starts deriving them first cannot finish them all before the task)


def post_session(live_server, key: str, session: str) -> int:
    """Post one session's events; the HTTP status, or 0 when no answer came."""
    batch = [
        generation("g1", session=session, t=0),
        event("view", session=session, generation_id="g1", dwell_ms=900, t=1),
        event("copy", session=session, generation_id="g1", t=2),
    ]
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/events",
        data=json.dumps({"events": batch}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def test_acknowledged_events_are_derived_after_a_redis_outage_without_a_worker_restart(
    live_server, settings, project, api_key, private_redis, start_worker
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": private_redis.url,
        }
    }
    statuses: dict[str, int] = {}

    def post(session: str) -> int:
        statuses[session] = post_session(live_server, api_key, session)
        return statuses[session]

    with use_broker(private_redis.url):
        # The solo pool runs a task in the consumer's own thread, so a task running when
        # Redis goes acknowledges before the consumer sees the connection is lost: the ack
        # fails, which used to make the worker exit (config.celery.BrokerOutageConsumer).
        worker = start_worker(private_redis.url, beat=True, sweep_seconds=2, pool="solo")
        for n in range(5):
            assert post(f"before-{n}") in ACKNOWLEDGED
        backlog = [f"backlog-{n}" for n in range(BACKLOG)]
        result = services.events_ingest(
            project=project, events=[generation("g1", session=s, t=0) for s in backlog]
        )
        assert result.accepted == BACKLOG
        in_flight = derive_pending_sessions.apply_async()
        wait_until(lambda: f"{in_flight.id}] received" in worker.log.read_text(), what="a task")
        private_redis.stop()  # while that task derives its chunk
        during = itertools.count()

        def worker_retrying() -> bool:
            post(f"during-{next(during)}")
            assert worker.alive(), worker.log.read_text()[-3000:]
            return worker.log.read_text().count("Cannot connect to") >= 2

        # Clients keep posting until the worker has failed to reconnect twice: it is in its
        # retry loop, where it used to exit.
        wait_until(worker_retrying, what="the worker to retry the broker")
        private_redis.start()
        for n in range(5):
            post(f"after-{n}")

        acknowledged = [s for s, status in statuses.items() if status in ACKNOWLEDGED] + backlog
        assert {f"after-{n}" for n in range(5)} <= set(acknowledged), statuses

        def all_derived() -> bool:
            done = Session.objects.filter(
                external_id__in=acknowledged, derived_changes=F("changes")
            ).count()
            return done == len(acknowledged)

        wait_until(all_derived, timeout=45, what="every acknowledged session to be derived")

    log = worker.log.read_text()
    assert worker.alive(), log[-3000:]
    assert "Connection to broker lost" in log
    assert "Couldn't ack" in log, "the task in flight finished before Redis went: no test"
    assert "Unrecoverable error" not in log
    refused = [s for s, status in statuses.items() if status not in ACKNOWLEDGED]
    assert all(statuses[s] == 503 for s in refused), statuses  # never a 500
