from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test import Client

from review import claims
from review.claims import annotation_submit, item_claim_next
from review.gate import queue_agreement_recompute
from review.models import Annotation, Assignment, Item, Question, Queue
from tests.conftest import token_client
from tests.pgtrace import libpq_trace, round_trips
from tests.review.conftest import GOOD, make_items

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROUNDS = 6


def claim_all_at_once(queue: Queue, annotators: list) -> list[BaseException]:
    barrier = threading.Barrier(len(annotators))
    errors: list[BaseException] = []

    def work(user) -> None:
        try:
            barrier.wait(timeout=30)
            # One call each, no retry: SKIP LOCKED passes over items other claimers hold
            # for a moment, and a claim must wait for them rather than report "nothing
            # left" while slots remain.
            item_claim_next(queue=queue, user=user)
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_many_annotators_claiming_at_once_never_overfill_an_item(project, django_user_model):
    annotators = [
        django_user_model.objects.create_user(username=f"annotator{i}") for i in range(12)
    ]
    # Several rounds: the race (a claim committed between another claimer's snapshot and
    # its row lock) needs the timing to line up, so give it many chances.
    for round_ in range(ROUNDS):
        queue = Queue.objects.create(
            project=project, name=f"Round {round_}", annotations_per_item=2
        )
        queue.members.add(*annotators)
        items = make_items(queue, 5)  # 10 slots for 12 annotators

        assert claim_all_at_once(queue, annotators) == []

        claims = list(Assignment.objects.filter(queue=queue).values_list("item_id", "user_id"))
        per_item = Counter(item for item, _ in claims)
        per_user = Counter(user for _, user in claims)
        assert max(per_item.values()) <= queue.annotations_per_item, per_item
        assert max(per_user.values()) == 1  # one live claim each
        assert len(set(claims)) == len(claims)
        assert sum(per_item.values()) == len(items) * queue.annotations_per_item


def test_answers_and_gate_recomputations_at_once_never_deadlock(project, django_user_model):
    """Answers that complete items (item, then queue) while the gate writes outcomes and
    recounts the queue: one lock order, so no "deadlock detected" and no lost answer."""
    # 6 annotators and 2 gate runs: with the test's own, under the pool's 10 connections.
    annotators = [django_user_model.objects.create_user(username=f"annotator{i}") for i in range(6)]
    queue = Queue.objects.create(project=project, name="Busy", annotations_per_item=2)
    Question.objects.create(
        queue=queue, key="verdict", type="choice", prompt="?", choices=["yes", "no"]
    )
    queue.members.add(*annotators)
    items = make_items(queue, 120)
    errors: list[BaseException] = []
    answering = threading.Event()
    answering.set()
    barrier = threading.Barrier(len(annotators) + 2)

    def annotate(user) -> None:
        try:
            barrier.wait(timeout=30)
            while (assignment := item_claim_next(queue=queue, user=user)) is not None:
                answer = "yes" if (assignment.item_id + user.pk) % 3 else "no"
                annotation_submit(item=assignment.item, user=user, answers={"verdict": answer})
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    def recompute() -> None:
        try:
            barrier.wait(timeout=30)
            while answering.is_set():
                queue_agreement_recompute(queue=Queue.objects.get(pk=queue.pk))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=annotate, args=(user,)) for user in annotators]
    gates = [threading.Thread(target=recompute) for _ in range(2)]
    for thread in workers + gates:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)
    answering.clear()
    for thread in gates:
        thread.join(timeout=120)

    assert errors == []
    assert Annotation.objects.filter(item__queue=queue).count() == len(items) * 2
    queue.refresh_from_db()
    assert (queue.items_open, queue.items_complete) == (0, len(items))


def hold_row_locks(item_ids: list[int], locked: threading.Event, release: threading.Event):
    """Another connection holding the items' row locks, as the gate does while it writes."""

    def hold() -> None:
        try:
            with transaction.atomic():
                list(Item.objects.select_for_update().filter(pk__in=item_ids))
                locked.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(timeout=30)
    return thread


def test_claim_waits_for_items_another_transaction_holds_instead_of_reporting_empty(queue, alice):
    items = make_items(queue, 3)
    locked, release = threading.Event(), threading.Event()
    holder = hold_row_locks([i.pk for i in items], locked, release)
    threading.Timer(0.5, release.set).start()  # the holder commits soon, as the gate does
    try:
        assignment = item_claim_next(queue=queue, user=alice)
    finally:
        release.set()
        holder.join(timeout=30)
    assert assignment is not None and assignment.item_id == items[0].pk


def test_claim_answers_retry_later_while_every_item_stays_locked(queue, alice, monkeypatch):
    monkeypatch.setattr(claims, "CLAIM_LOCK_WAIT_MS", 200)
    items = make_items(queue, 2)
    locked, release = threading.Event(), threading.Event()
    holder = hold_row_locks([i.pk for i in items], locked, release)
    try:
        response = token_client(alice).post(f"/api/v1/queues/{queue.pk}/next")
        page = Client()
        page.force_login(alice)
        html = page.get(f"/review/q/{queue.pk}/")
    finally:
        release.set()
        holder.join(timeout=30)
    assert response.status_code == 503  # not 204 "nothing left": items remain
    assert int(response["Retry-After"]) >= 1
    assert html.status_code == 503 and "Queue done" not in html.content.decode()
    assert not Assignment.objects.filter(user=alice).exists()
    # Once the locks are gone the same request claims.
    assert token_client(alice).post(f"/api/v1/queues/{queue.pk}/next").status_code == 200


def test_empty_queue_still_answers_204_at_once(queue, alice):
    assert token_client(alice).post(f"/api/v1/queues/{queue.pk}/next").status_code == 204


def test_two_tabs_per_annotator_answering_at_once_never_overfill_an_item(
    project, django_user_model
):
    """Four annotators, each with two tabs claiming, answering and now and then skipping at
    once until nothing is left: every item ends with exactly the annotations it wants (no
    more), counts that agree with the rows, and the queue's counters with the statuses.
    A tab that loses a race to its twin gets a conflict (409 in the API), never an error."""
    annotators = [django_user_model.objects.create_user(username=f"tabs{i}") for i in range(4)]
    queue = Queue.objects.create(project=project, name="Two tabs", annotations_per_item=3)
    Question.objects.create(
        queue=queue, key="verdict", type="choice", prompt="?", choices=["yes", "no"]
    )
    queue.members.add(*annotators)
    items = make_items(queue, 40)
    errors: list[BaseException] = []
    conflicts: list[str] = []
    barrier = threading.Barrier(len(annotators) * 2)

    def tab(user, twin: int) -> None:
        try:
            barrier.wait(timeout=30)
            n = 0
            while (assignment := item_claim_next(queue=queue, user=user)) is not None:
                n += 1
                try:
                    if (assignment.item_id + n + twin) % 11 == 0:
                        claims.item_skip(item=assignment.item, user=user)
                    else:
                        annotation_submit(
                            item=assignment.item, user=user, answers={"verdict": "yes"}
                        )
                except claims.ReviewConflict as conflict:
                    conflicts.append(str(conflict))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=tab, args=(user, twin)) for user in annotators for twin in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert errors == []
    # The twin answered it first, or skipped it and another annotator took the slot.
    assert set(conflicts) <= {
        "You already answered this item.",
        "This item needs no more annotations.",
    }
    given = Counter(Annotation.objects.filter(item__queue=queue).values_list("item_id", flat=True))
    assert max(given.values()) <= queue.annotations_per_item
    for item in Item.objects.filter(queue=queue):
        assert item.annotation_count == given[item.pk]
        assert (item.status == Item.Status.COMPLETE) == (given[item.pk] == 3)
    # Skips leave items short only where all four annotators answered or skipped them.
    per_user = Assignment.objects.filter(queue=queue).values_list("item_id", "user_id")
    seen = Counter(item for item, _ in per_user)
    assert all(given[i.pk] == 3 or seen[i.pk] == len(annotators) for i in items)
    assert not Assignment.objects.filter(queue=queue, status=Assignment.Status.CLAIMED).exists()
    queue.refresh_from_db()
    complete = Item.objects.filter(queue=queue, status=Item.Status.COMPLETE).count()
    assert (queue.items_open, queue.items_complete) == (len(items) - complete, complete)


def test_an_answer_locks_its_item_only_within_one_round_trip(queue, alice):
    """Outside a transaction (as in a request), the item's lock, the answer and COMMIT go to
    PostgreSQL at once: no other answer to the item waits while this process runs Python
    between them. What the answer's values need is read before, without a lock."""
    make_items(queue, 1)
    claim = item_claim_next(queue=queue, user=alice)
    assert claim is not None
    with libpq_trace() as messages:
        annotation_submit(item=claim.item, user=alice, answers=GOOD)
    trips = [" | ".join(trip) for trip in round_trips(messages)]
    locking = [trip for trip in trips if "FOR UPDATE" in trip]
    assert len(locking) == 1, trips
    assert '"BEGIN"' in locking[0]
    assert "WITH mine AS" in locking[0]
    assert '"COMMIT"' in locking[0]
    assert trips[-1] == locking[0]  # the last: nothing waits on its answer with the lock held
    assert "a.presentation" in trips[-2]  # the values' read before it, no lock taken
    assert "FOR UPDATE" not in trips[-2]
    claim.item.refresh_from_db()
    assert claim.item.annotation_count == 1
    assert Annotation.objects.get(item=claim.item, user=alice).answers == GOOD
