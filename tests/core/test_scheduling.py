"""core.scheduling.on_commit_once: once per key per transaction, and nothing lost to a rollback."""

from __future__ import annotations

import pytest
from django.db import transaction

from core.scheduling import on_commit_once

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
