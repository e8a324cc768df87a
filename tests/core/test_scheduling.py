"""core.scheduling: on_commit_once once per key per transaction, and nothing lost to a rollback;
schedule_debounced once per window, asking the cache once per window and process."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.db import transaction

from core.scheduling import WINDOW_MARGIN_SECONDS, on_commit_once, schedule_debounced

pytestmark = pytest.mark.django_db(transaction=True)


class Boom(Exception):
    pass


def test_asked_three_times_in_one_transaction_runs_once_after_commit():
    ran: list[str] = []
    with transaction.atomic():
        for _ in range(3):
            on_commit_once(("agreement", 1), lambda: ran.append("q1"))
        on_commit_once(("agreement", 2), lambda: ran.append("q2"))
        assert ran == []  # nothing before the commit
    assert ran == ["q1", "q2"]


def test_each_transaction_gets_its_own_run():
    ran: list[int] = []
    for n in range(2):
        with transaction.atomic():
            on_commit_once("key", lambda n=n: ran.append(n))
    assert ran == [0, 1]


def test_a_rolled_back_transaction_does_not_swallow_the_next_request():
    ran: list[str] = []
    with pytest.raises(Boom), transaction.atomic():
        on_commit_once("key", lambda: ran.append("rolled back"))
        raise Boom
    with transaction.atomic():
        on_commit_once("key", lambda: ran.append("committed"))
    assert ran == ["committed"]


def test_a_rolled_back_savepoint_drops_its_request_and_a_later_one_in_the_outer_transaction_runs():
    ran: list[str] = []
    with transaction.atomic():
        with pytest.raises(Boom), transaction.atomic():
            on_commit_once("key", lambda: ran.append("savepoint"))
            raise Boom
        on_commit_once("key", lambda: ran.append("outer"))
    assert ran == ["outer"]


def test_outside_a_transaction_it_runs_at_once():
    ran: list[str] = []
    on_commit_once("key", lambda: ran.append("now"))
    on_commit_once("key", lambda: ran.append("again"))
    assert ran == ["now", "again"]


def _schedule(mark: str, calls: list[str]) -> bool:
    return schedule_debounced(mark=mark, window=60, enqueue=lambda: calls.append(mark))


def test_a_window_this_process_opened_is_known_without_the_cache():
    calls: list[str] = []
    assert _schedule("gleaner:test-own-window", calls) is True
    window_end = cache.get("gleaner:test-own-window")
    assert window_end == pytest.approx(time.time() + 60, abs=5)
    cache.delete("gleaner:test-own-window")  # unseen by this process: it does not ask
    assert _schedule("gleaner:test-own-window", calls) is False
    assert calls == ["gleaner:test-own-window"]


def test_a_window_another_process_opened_is_read_once_then_known():
    calls: list[str] = []
    cache.add("gleaner:test-their-window", time.time() + 30, timeout=30)
    assert _schedule("gleaner:test-their-window", calls) is False
    cache.delete("gleaner:test-their-window")
    assert _schedule("gleaner:test-their-window", calls) is False  # remembered until its end
    assert calls == []


@pytest.mark.parametrize(
    "value",
    [time.time() + WINDOW_MARGIN_SECONDS / 2, 1, "soon", None, True],
    ids=["ending within the margin", "an older mark", "text", "None", "a boolean"],
)
def test_a_window_ending_within_the_margin_or_of_unknown_end_is_asked_again(value):
    """Such a mark is obeyed while it lasts but not remembered: once it is gone, the next
    call schedules (`value` is stored as the other process left it)."""
    calls: list[str] = []
    cache.set("gleaner:test-window-unknown", value, timeout=30)
    assert _schedule("gleaner:test-window-unknown", calls) is False
    cache.delete("gleaner:test-window-unknown")
    assert _schedule("gleaner:test-window-unknown", calls) is True
    assert calls == ["gleaner:test-window-unknown"]
