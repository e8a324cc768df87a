"""The Python client (clients/python) against a real Gleaner: gunicorn in a subprocess on the
test database (tests/clients/conftest.py). Nothing of the client or the server is mocked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from gleaner_client import AsyncGleaner, Gleaner, GleanerError
from gleaner_client._ids import new_event_id
from gleaner_client._transport import backoff, parse_retry_after

from feedback.models import Event, Label, Session
from tenancy.models import ApiKey
from tests.clients.servers import GleanerServer
from tests.factories import CORRECTED, OUTPUT
from tests.worker import free_port, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Retries in milliseconds, so that a test of them takes no time.
FAST = {"backoff_base": 0.01, "max_backoff": 0.05}


def client(server_or_url, api_key: str, **options) -> Gleaner:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url
    return Gleaner(api_key, url, **{**FAST, **options})


def one_session(gleaner: Gleaner | AsyncGleaner, session: str = "s1") -> list[str]:
    """Every event type once, the way a product reports a session; their ids."""
    prompt = [{"role": "user", "content": "Summarise the quarterly report."}]
    return [
        gleaner.generation(
            session_id=session,
            generation_id="g1",
            input=prompt,
            output=OUTPUT,
            model="acme-chat-2",
            metadata={"feature": "summarise"},
            user_id="u1",
        ),
        gleaner.edit(session_id=session, generation_id="g1", text=CORRECTED, user_id="u1"),
        gleaner.regenerate(session_id=session, generation_id="g1", user_id="u1"),
        gleaner.generation(
            session_id=session,
            generation_id="g2",
            input=prompt,
            output="Revenue grew 5%.",
            replaces="g1",
            user_id="u1",
        ),
        gleaner.copy(session_id=session, generation_id="g2", text="Revenue", user_id="u1"),
        gleaner.share(session_id=session, generation_id="g2", user_id="u1"),
        gleaner.view(session_id=session, generation_id="g2", dwell_ms=5400.4, user_id="u1"),
        gleaner.rating(session_id=session, generation_id="g2", value=True, comment="good"),
        gleaner.session_outcome(session_id=session, outcome="completed", signal="tests_passed"),
    ]


def assert_posts(server, expected: int) -> None:
    """The server answered `expected` event posts: counted in its access log, where it
    writes a request just after answering it."""
    wait_until(lambda: server.event_posts() >= expected, timeout=10, what="the access log")
    assert server.event_posts() == expected


def stored(server_db: str, ids: list[str] | None = None):
    events = Event.objects.using(server_db)
    return events.filter(client_id__in=ids) if ids is not None else events


def test_every_event_type_is_stored_and_derived(gleaner_server, server_db, api_key):
    gleaner = client(gleaner_server, api_key, flush_interval=60)
    ids = one_session(gleaner)
    assert gleaner.flush(timeout=30)

    rows = {e.client_id: e for e in stored(server_db)}
    assert set(rows) == set(ids)
    assert [rows[i].type for i in ids] == [
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
    assert rows[ids[6]].payload == {"dwell_ms": 5400}
    assert rows[ids[7]].payload == {"value": 1, "comment": "good"}
    assert rows[ids[0]].user_ref == "u1"
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=1) < e.timestamp <= now for e in rows.values())
    session = Session.objects.using(server_db).get(external_id="s1")
    assert session.derived_changes == session.changes  # derived by the server on arrival
    assert session.outcome == "completed"
    labels = Label.objects.using(server_db)
    assert {"edit", "share", "rating"} <= set(labels.values_list("source", flat=True))
    correction = labels.get(source="edit")
    assert (correction.kind, correction.chosen, correction.rejected) == (
        "preference_pair",
        CORRECTED,
        OUTPUT,
    )
    stats = gleaner.stats()
    assert (stats.sent, stats.duplicate, stats.rejected, stats.dropped) == (9, 0, 0, 0)
    assert (stats.requests, stats.queued) == (1, 0)
    assert_posts(gleaner_server, 1)
    gleaner.close()


def test_events_go_in_batches_of_batch_size(gleaner_server, server_db, api_key):
    gleaner = client(gleaner_server, api_key, batch_size=10, flush_interval=60)
    ids = [gleaner.view(session_id=f"s{n % 3}", generation_id="g1", dwell_ms=n) for n in range(25)]
    # Two full batches leave without being asked; the last five wait for flush().
    wait_until(lambda: gleaner.stats().queued == 5, timeout=15, what="two batches sent")
    assert stored(server_db).count() == 20  # stored before the server answered
    assert gleaner.flush(timeout=30)

    assert set(stored(server_db).values_list("client_id", flat=True)) == set(ids)
    assert gleaner.stats().requests == 3
    assert_posts(gleaner_server, 3)
    gleaner.close()


def test_an_event_leaves_after_flush_interval_without_a_flush(gleaner_server, server_db, api_key):
    gleaner = client(gleaner_server, api_key, flush_interval=0.2)
    event_id = gleaner.share(session_id="s1", generation_id="g1")
    wait_until(lambda: stored(server_db, [event_id]).exists(), timeout=15, what="the event")
    # The server commits before it answers, and the client counts the answer after: poll.
    wait_until(lambda: gleaner.stats().sent == 1, timeout=15, what="the client's count")
    assert gleaner.stats().queued == 0
    gleaner.close()


def test_a_batch_whose_answer_was_lost_is_retried_and_stored_once(
    losing_proxy, gleaner_server, server_db, api_key
):
    losing_proxy.lose = 1  # the server stores the batch; the client never hears so
    gleaner = client(losing_proxy.url, api_key, flush_interval=60)
    ids = one_session(gleaner)
    assert gleaner.flush(timeout=30)

    assert losing_proxy.lost == 1
    assert_posts(gleaner_server, 2)  # the same batch, twice
    assert stored(server_db).count() == len(ids)
    assert set(stored(server_db).values_list("client_id", flat=True)) == set(ids)
    stats = gleaner.stats()
    assert (stats.requests, stats.retries) == (2, 1)
    # The first attempt stored every event: the retry finds them all there already.
    assert (stats.sent, stats.duplicate, stats.rejected, stats.dropped) == (0, 9, 0, 0)
    gleaner.close()


def test_sending_the_same_events_again_stores_nothing_new(gleaner_server, server_db, api_key):
    gleaner = client(gleaner_server, api_key, flush_interval=60)
    first = gleaner.copy(session_id="s1", generation_id="g1", text="Revenue")
    gleaner.copy(session_id="s1", generation_id="g1", text="Revenue", id=first)
    assert gleaner.flush(timeout=30)
    assert stored(server_db).count() == 1
    stats = gleaner.stats()
    assert (stats.sent, stats.duplicate) == (1, 1)
    gleaner.close()


def test_a_refused_event_goes_to_on_error_and_is_not_retried(gleaner_server, server_db, api_key):
    errors: list[GleanerError] = []
    gleaner = client(gleaner_server, api_key, flush_interval=60, on_error=errors.append)
    good = gleaner.share(session_id="s1", generation_id="g1")
    bad = gleaner.view(session_id="s1", generation_id="g1", dwell_ms=-5)
    assert gleaner.flush(timeout=30)

    assert list(stored(server_db).values_list("client_id", flat=True)) == [good]
    [error] = errors
    assert (error.kind, error.status, error.event_ids) == ("rejected", 207, [bad])
    [event_error] = error.event_errors
    assert (event_error.id, event_error.index) == (bad, 1)
    assert "dwell_ms" in event_error.errors
    stats = gleaner.stats()
    assert (stats.sent, stats.rejected, stats.requests, stats.retries) == (1, 1, 1, 0)
    assert_posts(gleaner_server, 1)
    gleaner.close()


def test_a_refused_batch_goes_to_on_error_and_is_not_retried(gleaner_server, server_db):
    errors: list[GleanerError] = []
    gleaner = client(gleaner_server, "glk_not-a-key", flush_interval=60, on_error=errors.append)
    ids = [gleaner.share(session_id="s1", generation_id="g1") for _ in range(3)]
    assert gleaner.flush(timeout=30)

    [error] = errors
    assert (error.kind, error.status, error.event_ids) == ("request", 401, ids)
    stats = gleaner.stats()
    assert (stats.sent, stats.rejected, stats.dropped, stats.requests) == (0, 3, 0, 1)
    assert not stored(server_db).exists()
    gleaner.close()


def test_nothing_is_lost_or_duplicated_while_the_server_is_down(gleaner_server, server_db, api_key):
    gleaner = client(
        gleaner_server, api_key, batch_size=10, max_retries=1000, backoff_base=0.05, max_backoff=0.2
    )
    gleaner_server.stop()
    ids = [gleaner.share(session_id=f"s{n}", generation_id="g1") for n in range(30)]
    wait_until(lambda: gleaner.stats().retries >= 3, timeout=15, what="the client to retry")
    assert not gleaner.flush(timeout=0.1)  # still retrying the first batch

    gleaner_server.start()  # the same port
    assert gleaner.flush(timeout=30)
    assert stored(server_db).count() == 30
    assert set(stored(server_db).values_list("client_id", flat=True)) == set(ids)
    stats = gleaner.stats()
    assert (stats.sent, stats.duplicate, stats.rejected, stats.dropped) == (30, 0, 0, 0)
    assert_posts(gleaner_server, 3)
    gleaner.close()


def test_retries_give_up_after_max_retries_and_count_the_events_dropped(api_key):
    errors: list[GleanerError] = []
    nobody = f"http://127.0.0.1:{free_port()}"
    gleaner = client(nobody, api_key, max_retries=2, on_error=errors.append)
    ids = [gleaner.share(session_id="s1", generation_id="g1") for _ in range(4)]
    assert gleaner.flush(timeout=30)

    [error] = errors
    assert (error.kind, error.status, error.event_ids) == ("gave_up", None, ids)
    assert "3 attempts failed" in error.message
    stats = gleaner.stats()
    assert (stats.dropped, stats.requests, stats.retries, stats.queued) == (4, 3, 2, 0)
    gleaner.close()


def test_a_server_whose_redis_is_down_answers_503_and_the_batch_is_retried(
    gleaner_server, server_db, api_key, tmp_path
):
    errors: list[GleanerError] = []
    no_redis = GleanerServer(
        port=free_port(),
        env={**gleaner_server.env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        log=tmp_path / "no-redis.log",
    )
    no_redis.start()
    try:
        gleaner = client(no_redis, api_key, max_retries=1, on_error=errors.append)
        ids = [gleaner.share(session_id="s1", generation_id="g1") for _ in range(2)]
        assert not gleaner.flush(timeout=1)  # waiting out the 503's Retry-After (10 s)
        assert gleaner.stats().requests == 1
        gleaner.close(timeout=0)
    finally:
        no_redis.stop()
    [error] = errors
    assert (error.kind, error.event_ids) == ("gave_up", ids)
    assert "closed while retrying" in error.message
    assert_posts(no_redis, 1)
    assert '"POST /api/v1/events HTTP/1.1" 503 ' in no_redis.log.read_text()
    assert gleaner.stats().dropped == 2
    assert not stored(server_db).exists()


def test_a_rate_limited_batch_waits_for_retry_after(gleaner_server, server_db, api_key):
    ApiKey.objects.using(server_db).update(rate_limit_per_minute=1)
    # The limit counts in windows of a clock minute: both requests must fall in one, with
    # at least 10 s of it left (the Retry-After the client will be given).
    wait_until(lambda: time.time() % 60 < 50, timeout=20, what="a minute with room left")
    gleaner = client(gleaner_server, api_key, flush_interval=60, max_retries=5)
    gleaner.share(session_id="s1", generation_id="g1")
    assert gleaner.flush(timeout=30)
    gleaner.share(session_id="s1", generation_id="g2")
    # Over the limit: told to come back in up to a minute, the client does not retry sooner
    # (its own backoff would have retried within milliseconds, many times over).
    assert not gleaner.flush(timeout=1)
    assert gleaner.stats().requests == 2
    assert_posts(gleaner_server, 2)
    assert gleaner_server.log.read_text().count('"POST /api/v1/events HTTP/1.1" 429 ') == 1

    gleaner.close(timeout=0)  # stop waiting: the event is dropped and counted
    stats = gleaner.stats()
    assert (stats.sent, stats.dropped, stats.queued) == (1, 1, 0)
    assert stored(server_db).count() == 1


def test_a_full_queue_drops_new_events_and_counts_them(gleaner_server, server_db, api_key):
    gleaner = client(gleaner_server, api_key, max_queue=5, flush_interval=60)
    ids = [gleaner.share(session_id="s1", generation_id=f"g{n}") for n in range(8)]
    assert len(set(ids)) == 8  # the caller gets ids, dropped or not
    stats = gleaner.stats()
    assert (stats.queued, stats.dropped) == (5, 3)

    assert gleaner.flush(timeout=30)
    assert set(stored(server_db).values_list("client_id", flat=True)) == set(ids[:5])
    assert gleaner.stats().sent == 5
    gleaner.close()
    gleaner.share(session_id="s1", generation_id="g9")  # after close: dropped, never raises
    assert gleaner.stats().dropped == 4


def test_events_queued_at_exit_are_sent(gleaner_server, server_db, api_key):
    program = (
        "import sys\n"
        "from gleaner_client import Gleaner\n"
        "g = Gleaner(sys.argv[1], sys.argv[2], flush_interval=60)\n"
        "print(g.share(session_id='s1', generation_id='g1'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, api_key, gleaner_server.url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    event_id = done.stdout.strip()
    assert stored(server_db, [event_id]).exists()


def test_the_async_client_end_to_end(gleaner_server, server_db, api_key):
    errors: list[GleanerError] = []

    async def until_sent(gleaner: AsyncGleaner) -> None:
        while gleaner.stats().sent == 0:
            await asyncio.sleep(0.05)  # polling interval

    async def product() -> None:
        gleaner = AsyncGleaner(
            api_key, gleaner_server.url, batch_size=4, flush_interval=60, on_error=errors.append
        )
        async with gleaner:
            ids = one_session(gleaner, session="async")  # plain calls: nothing to await
            assert await gleaner.flush(timeout=30)
            assert gleaner.stats().requests == 3  # 4 + 4 + 1
            refused = gleaner.view(session_id="async", generation_id="g2", dwell_ms=-1)
        # Leaving the block closed the client, which sent the last event.
        stats = gleaner.stats()
        assert (stats.sent, stats.rejected, stats.requests, stats.queued) == (9, 1, 4, 0)
        [error] = errors
        assert (error.kind, error.event_ids) == ("rejected", [refused])
        gleaner.share(session_id="async", generation_id="g1")
        assert gleaner.stats().dropped == 1  # closed

        timed = AsyncGleaner(api_key, gleaner_server.url, flush_interval=0.2)
        last = timed.share(session_id="async", generation_id="g1")
        await asyncio.wait_for(until_sent(timed), timeout=15)  # no flush: the interval sent it
        await timed.aclose()
        sent_ids.extend([*ids, last])

    sent_ids: list[str] = []
    asyncio.run(product())
    assert set(stored(server_db).values_list("client_id", flat=True)) == set(sent_ids)


def test_event_ids_are_uuid7_in_the_order_they_were_made():
    ids = [new_event_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids} == {7}
    made_at = uuid.UUID(ids[0]).int >> 80
    now_ms = datetime.now(UTC).timestamp() * 1000
    assert now_ms - 5000 < made_at <= now_ms


def test_backoff_has_full_jitter_and_honours_retry_after():
    waits = [backoff(4, None, base=0.5, cap=30) for _ in range(200)]
    assert all(0 <= w <= 4 for w in waits) and max(waits) > 2 > min(waits)
    assert all(backoff(1, 7.0, base=0.5, cap=30) >= 7.0 for _ in range(20))
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 02 Dec 2026 10:00:30 GMT", now=1_796_205_600.0) == 30.0


def test_the_sender_survives_a_broken_on_error(gleaner_server, server_db, api_key):
    def broken(error: GleanerError) -> None:
        raise RuntimeError("bug in the product's callback")

    gleaner = client(gleaner_server, api_key, flush_interval=60, on_error=broken)
    gleaner.view(session_id="s1", generation_id="g1", dwell_ms=-1)
    assert gleaner.flush(timeout=30)
    later = gleaner.share(session_id="s1", generation_id="g1")
    assert gleaner.flush(timeout=30)
    assert stored(server_db, [later]).exists()
    gleaner.close()


def test_a_naive_timestamp_is_refused_at_the_call(api_key):
    gleaner = Gleaner(api_key, "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="timezone-aware"):
        gleaner.share(session_id="s1", generation_id="g1", timestamp=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(TypeError):
        gleaner.generation(
            session_id="s1", generation_id="g1", input="q", output="a", metadata={"x": object()}
        )
    assert gleaner.stats().queued == 0
    gleaner.close()
