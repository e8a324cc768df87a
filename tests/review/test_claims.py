from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from review.answers import AnswersInvalid
from review.claims import (
    ReviewConflict,
    annotation_submit,
    claims_reap,
    item_claim_next,
    item_skip,
)
from review.models import Annotation, Assignment, Item, Queue
from tests.review.conftest import GOOD, make_items

pytestmark = pytest.mark.django_db


def test_claim_takes_highest_priority_then_oldest(queue, alice):
    low = make_items(queue, 2)
    high = make_items(queue, 1, priority=5)
    assert item_claim_next(queue=queue, user=alice).item == high[0]
    annotation_submit(item=high[0], user=alice, answers=GOOD)
    assert item_claim_next(queue=queue, user=alice).item == low[0]


def test_claim_is_resumed_not_duplicated(queue, alice):
    make_items(queue, 3)
    first = item_claim_next(queue=queue, user=alice)
    assert item_claim_next(queue=queue, user=alice).pk == first.pk
    assert Assignment.objects.filter(user=alice).count() == 1


def test_item_is_claimed_by_no_more_annotators_than_it_needs(queue, alice, bob, carol):
    (item,) = make_items(queue, 1)  # needs 2
    assert item_claim_next(queue=queue, user=alice).item == item
    assert item_claim_next(queue=queue, user=bob).item == item
    assert item_claim_next(queue=queue, user=carol) is None


def test_annotator_never_gets_an_item_twice(queue, alice):
    (item,) = make_items(queue, 1)
    item_claim_next(queue=queue, user=alice)
    annotation_submit(item=item, user=alice, answers=GOOD)
    assert item_claim_next(queue=queue, user=alice) is None
    with pytest.raises(ReviewConflict, match="already answered"):
        annotation_submit(item=item, user=alice, answers=GOOD)
    assert Annotation.objects.count() == 1


def test_an_answer_keeps_its_items_queue(queue, project, alice):
    """The agreement recompute reads a queue's answers by Annotation.queue (review/gate.py)."""
    other = Queue.objects.create(project=project, name="Other", annotations_per_item=1)
    for question in queue.questions.all():  # the same questions, in a queue of its own
        question.pk, question.queue = None, other
        question.save()
    (item,) = make_items(queue, 1)
    (elsewhere,) = make_items(other, 1)
    returned = annotation_submit(item=item, user=alice, answers=GOOD)
    annotation_submit(item=elsewhere, user=alice, answers=GOOD)
    assert returned.queue_id == queue.pk
    stored = dict(Annotation.objects.values_list("item_id", "queue_id"))
    assert stored == {item.pk: queue.pk, elsewhere.pk: other.pk}


def test_skip_releases_the_claim_and_is_not_offered_again(queue, alice, bob):
    first, second = make_items(queue, 2)
    assert item_claim_next(queue=queue, user=alice).item == first
    item_skip(item=first, user=alice)
    assert item_claim_next(queue=queue, user=alice).item == second
    assert item_claim_next(queue=queue, user=bob).item == first


def test_expired_claims_free_their_slot_and_are_reaped(queue, alice, bob, carol):
    (item,) = make_items(queue, 1)
    item_claim_next(queue=queue, user=alice)
    item_claim_next(queue=queue, user=bob)
    later = timezone.now() + timedelta(minutes=queue.claim_timeout_minutes + 1)
    assert item_claim_next(queue=queue, user=carol, now=later).item == item
    assert claims_reap(now=later) == 2
    assert list(Assignment.objects.values_list("user__username", flat=True)) == ["carol"]


def test_answers_complete_the_item_when_enough(queue, alice, bob):
    (item,) = make_items(queue, 1)
    annotation_submit(item=item, user=alice, answers=GOOD)
    annotation_submit(item=item, user=bob, answers={"better": "right", "quality": 2})
    item.refresh_from_db()
    assert (item.status, item.annotation_count) == ("complete", 2)


def test_answering_without_claim_is_refused_when_no_slot_is_left(queue, alice, bob, carol):
    (item,) = make_items(queue, 1)
    item_claim_next(queue=queue, user=alice)
    item_claim_next(queue=queue, user=bob)
    with pytest.raises(ReviewConflict, match="no more"):
        annotation_submit(item=item, user=carol, answers=GOOD)


@pytest.mark.parametrize(
    ("answers", "field", "fragment"),
    [
        ({"better": "middle", "quality": 3}, "better", "Must be one of"),
        ({"better": "left", "quality": 9}, "quality", "between 1 and 5"),
        ({"better": "left", "quality": "good"}, "quality", "whole number"),
        ({"quality": 3}, "better", "needs an answer"),
        ({"better": "left", "quality": 3, "mood": "x"}, "mood", "Not a question"),
        ({"better": "left", "quality": 3, "note": 5}, "note", "text"),
        ("left", "answers", "object"),
    ],
)
def test_bad_answers_name_the_question_and_store_nothing(queue, alice, answers, field, fragment):
    (item,) = make_items(queue, 1)
    item_claim_next(queue=queue, user=alice)
    with pytest.raises(AnswersInvalid) as error:
        annotation_submit(item=item, user=alice, answers=answers)
    assert fragment in error.value.errors[field]
    assert Annotation.objects.count() == 0
    item.refresh_from_db()
    assert item.annotation_count == 0
    assert Assignment.objects.get().status == "claimed"


def test_pairs_get_a_recorded_random_left_right_order(queue, alice, bob):
    make_items(queue, 40)
    orders = set()
    for user in (alice, bob):
        for _ in range(20):
            claim = item_claim_next(queue=queue, user=user)
            orders.add(tuple(claim.presentation["order"]))
            annotation_submit(item=claim.item, user=user, answers=GOOD)
    assert orders == {(0, 1), (1, 0)}
    assert all(a.presentation.get("order") for a in Annotation.objects.all())


def test_discarded_items_take_no_answers(queue, alice):
    (item,) = make_items(queue, 1)
    Item.objects.filter(pk=item.pk).update(status="discarded")
    with pytest.raises(ReviewConflict):
        annotation_submit(item=item, user=alice, answers=GOOD)
    assert item_claim_next(queue=queue, user=alice) is None


def test_a_paused_queue_hands_out_nothing(queue, alice):
    make_items(queue, 2)
    queue.is_active = False
    queue.save()
    assert item_claim_next(queue=queue, user=alice) is None


def test_answers_in_one_transaction_schedule_one_agreement_recomputation(
    queue, alice, bob, django_capture_on_commit_callbacks
):
    from django.db import transaction

    items = make_items(queue, 3)
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for item in items:
            annotation_submit(item=item, user=alice, answers=GOOD)
            annotation_submit(item=item, user=bob, answers=GOOD)
    assert len(callbacks) == 1
