"""Routing follows a label's meaning: a late outcome that turns an abandoned session into
a completed one withdraws the item from the abandoned queue (not claimable, its answers
not counted by the gate) and routes the label afresh (review/services.py labels_route)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from feedback import labelling, services
from feedback.models import Label, RoutingPolicy, Session
from review.claims import ReviewConflict, annotation_submit, item_claim_next
from review.gate import queue_agreement_recompute
from review.models import Annotation, Item, Queue
from tests.factories import BASE_TIME, event, generation

pytestmark = pytest.mark.django_db

OUTPUT = "The quarterly report says revenue grew four percent, driven by the new tier."
FAILED = {"verdict": "yes", "quality": 1}


def ingest(project, events) -> None:
    assert services.events_ingest(project=project, events=events).rejected == 0


def derive_all() -> None:
    while labelling.sessions_derive_pending():
        pass


def item_rows() -> list[tuple]:
    return list(
        Item.objects.order_by("id").values_list(
            "id", "queue_id", "label_id", "status", "reason", "reason_detail", "decision"
        )
    )


def answered_abandoned_item(project, *users) -> Item:
    """A silent session of a project that sends outcome events: timed out, its last
    answer labelled abandoned and answered 'yes, it failed' by `users`."""
    RoutingPolicy.objects.filter(project=project).update(sends_outcome_events=True)
    ingest(project, [generation("g1", output=OUTPUT)])
    labelling.sessions_mark_abandoned(now=BASE_TIME + timedelta(minutes=31))
    derive_all()
    item = Item.objects.get(label__rule="session_abandoned")
    assert item.queue.reason == Queue.Reason.ABANDONED
    item.queue.members.add(*users)
    for user in users:
        annotation_submit(item=item, user=user, answers=FAILED)
    return item


def late_completed_outcome(project) -> None:
    ingest(project, [event("session_outcome", t=3600, outcome="completed")])
    derive_all()


def test_late_completed_outcome_withdraws_the_abandoned_item(project, alice, bob, carol):
    # A lead who trusts completed sessions (0.70) auto-accepts the new label.
    RoutingPolicy.objects.filter(project=project).update(confidence_threshold=0.7)
    old = answered_abandoned_item(project, alice, bob)
    label = old.label
    Label.objects.filter(pk=label.pk).update(review_outcome="rejected")  # the old verdict

    late_completed_outcome(project)

    assert Session.objects.get().outcome == Session.Outcome.COMPLETED
    label.refresh_from_db()
    assert (label.rule, label.label) == ("session_completed", True)
    assert label.review_outcome == ""  # the old question's verdict no longer applies
    old.refresh_from_db()
    assert old.status == Item.Status.DISCARDED and old.label_id is None
    assert old.reason_detail["withdrawn"]["label"] == label.pk
    assert old.reason_detail["withdrawn"]["now"] == "session_completed"
    # Not claimable, not answerable.
    old.queue.members.add(carol)
    assert item_claim_next(queue=old.queue, user=carol) is None
    with pytest.raises(ReviewConflict):
        annotation_submit(item=old, user=carol, answers=FAILED)
    # The gate counts none of its answers and writes nothing onto the label from it.
    snapshot = queue_agreement_recompute(queue=old.queue)
    assert Annotation.objects.filter(item=old).count() == 2
    assert snapshot.annotations == 0
    old.refresh_from_db()
    label.refresh_from_db()
    assert old.decision == Item.Decision.EXCLUDED
    assert label.review_outcome == ""
    queue = Queue.objects.get(pk=old.queue_id)
    assert (queue.items_open, queue.items_complete, queue.items_discarded) == (0, 0, 1)
    # Auto-accepted at the project's threshold: no new item, and exports take it.
    assert not label.needs_review
    assert not Item.objects.filter(label=label).exists()
    assert label.status == "auto_accepted"


def test_late_completed_outcome_routes_a_label_needing_review_to_its_queue(project, alice):
    RoutingPolicy.objects.filter(project=project).update(confidence_threshold=0.99)
    old = answered_abandoned_item(project, alice)

    late_completed_outcome(project)

    old.refresh_from_db()
    assert old.status == Item.Status.DISCARDED
    (new,) = Item.objects.exclude(status=Item.Status.DISCARDED)
    assert new.label.rule == "session_completed" and new.label.review_reason == "low_confidence"
    assert new.queue.reason == Queue.Reason.LOW_CONFIDENCE
    assert new.reason_detail["label"] is True
    assert new.annotation_count == 0 and not new.annotations.exists()


def test_rederiving_without_change_touches_no_item(project, alice):
    answered_abandoned_item(project, alice)
    before = item_rows()
    labelling.project_rederive(projects=[project])
    derive_all()
    assert item_rows() == before

    late_completed_outcome(project)
    after_late = item_rows()
    assert after_late != before
    for _ in range(2):
        labelling.project_rederive(projects=[project])
        derive_all()
        assert item_rows() == after_late


def test_a_late_abandoned_outcome_keeps_the_abandoned_item(project, alice):
    """Same meaning (still a negative on the same answer): the item and answers stay."""
    old = answered_abandoned_item(project, alice)
    ingest(project, [event("session_outcome", t=3600, outcome="abandoned")])
    derive_all()

    old.refresh_from_db()
    assert old.status != Item.Status.DISCARDED and old.label.rule == "session_abandoned"
    assert Item.objects.count() == 1


def test_an_item_routed_before_the_label_value_was_recorded_is_withdrawn_too(project, alice):
    old = answered_abandoned_item(project, alice)
    detail = {k: v for k, v in old.reason_detail.items() if k != "label"}
    Item.objects.filter(pk=old.pk).update(reason_detail=detail)

    late_completed_outcome(project)

    old.refresh_from_db()
    assert old.status == Item.Status.DISCARDED


def test_an_item_whose_label_the_log_no_longer_supports_is_withdrawn(project, alice):
    # A copy alone is reviewed; then the user rates the answer down: no acceptance is left.
    ingest(project, [generation("g1", output=OUTPUT), event("copy", generation_id="g1", t=5)])
    derive_all()
    item = Item.objects.get(label__rule="copy_accept")
    assert item.queue.reason == Queue.Reason.LOW_CONFIDENCE
    label_id = item.label_id

    ingest(project, [event("rating", generation_id="g1", t=9, value=-1)])
    derive_all()

    item.refresh_from_db()
    assert not Label.objects.get(pk=label_id).active
    assert item.status == Item.Status.DISCARDED and item.label_id is None
    assert item.reason_detail["withdrawn"]["why"] == "the log no longer supports the label"
    item.queue.members.add(alice)
    assert item_claim_next(queue=item.queue, user=alice) is None
    queue = Queue.objects.get(pk=item.queue_id)
    assert (queue.items_open, queue.items_discarded) == (0, 1)
