"""A lead leaves one annotator's answers in a queue out of agreement and the gate, with a
reason, and can take that back (review.models.AnnotatorExclusion: the rows are kept, so the
record says who excluded whom, why, and who revoked it).

The answers themselves stay: the gate (review/gate.py) reads the active exclusions once per
recomputation and masks those annotators' annotations out of items' agreement, the queue's
alpha and the other annotators' figures, as if they had never been given. Both writes
schedule that recomputation after their commit, as an answer does.

Items count only the answers that count: excluding takes the annotator's answers off their
items' `annotation_count` (an item left short opens again, so claims offer its free slot to
someone else), drops their live claims in the queue, and claims offer them nothing more
there; revoking puts the answers back on the counts (items complete again once full).
Adjudicated and discarded items keep their count and status: a lead decided them.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from core.storable import check_text, text_problem
from review.claims import agreement_schedule_on_commit
from review.models import Adjudication, Annotation, AnnotatorExclusion, Assignment, Item, Queue

MAX_REASON = 2000


def queue_exclusions(queue: Queue) -> list[AnnotatorExclusion]:
    """The queue's exclusions, active ones first, then newest first, with their users (one
    query)."""
    return list(
        AnnotatorExclusion.objects.filter(queue=queue)
        .select_related("user", "excluded_by", "revoked_by")
        .order_by(F("revoked_at").desc(nulls_first=True), "-created_at", "-pk")
    )


def annotator_exclude(
    *, queue: Queue, username: str, lead: User, reason: str
) -> AnnotatorExclusion:
    """Exclude the annotator `username` (one who answered in the queue or belongs to it)
    from `queue`'s agreement and gate. Raises ValueError ("field: message") for an unknown
    annotator, one excluded already, or a reason missing, too long or unstorable."""
    reason = reason.strip()
    if not reason:
        raise ValueError("reason: say why this annotator's answers should not count.")
    check_text("reason", reason, MAX_REASON)
    user = _annotator(queue, username)
    with transaction.atomic():
        try:
            with transaction.atomic():
                exclusion = AnnotatorExclusion.objects.create(
                    queue=queue, user=user, excluded_by=lead, reason=reason
                )
        except IntegrityError:  # one active exclusion per annotator and queue
            raise ValueError("username: this annotator's answers are excluded already.") from None
        Assignment.objects.filter(queue=queue, user=user, status=Assignment.Status.CLAIMED).delete()
        _move_counts(queue, user, -1)
        agreement_schedule_on_commit(queue.pk)
    return exclusion


def annotator_exclusion_revoke(*, queue: Queue, username: str, lead: User) -> AnnotatorExclusion:
    """Count the annotator's answers in `queue` again. Raises ValueError when they are not
    excluded."""
    with transaction.atomic():
        exclusion = (
            AnnotatorExclusion.objects.select_for_update()
            .filter(queue=queue, user__username=username, revoked_at__isnull=True)
            .first()
        )
        if exclusion is None:
            raise ValueError("username: this annotator's answers are not excluded.")
        exclusion.revoked_at = timezone.now()
        exclusion.revoked_by = lead
        exclusion.save(update_fields=["revoked_at", "revoked_by"])
        _move_counts(queue, exclusion.user, +1)
        agreement_schedule_on_commit(queue.pk)
    return exclusion


def _move_counts(queue: Queue, user: User, delta: int) -> None:
    """Take `user`'s answers off (-1) or put them back on (+1) their items' counts in
    `queue`, opening items left short or completing items made full, and move the queue's
    status counts to match (two UPDATEs and a count, whatever the number of items)."""
    per_item = queue.annotations_per_item
    items = (
        Item.objects.filter(
            queue=queue,
            pk__in=Annotation.objects.filter(user=user, queue=queue).values("item"),
        )
        .exclude(status=Item.Status.DISCARDED)
        .exclude(Exists(Adjudication.objects.filter(item=OuterRef("pk"))))
    )
    if delta < 0:
        flips = items.filter(status=Item.Status.COMPLETE, annotation_count__lte=per_item)
        moved = flips.update(status=Item.Status.OPEN)
        items.filter(annotation_count__gt=0).update(annotation_count=F("annotation_count") - 1)
        _move_queue_counts(queue, moved)
    else:
        items.update(annotation_count=F("annotation_count") + 1)
        flips = items.filter(status=Item.Status.OPEN, annotation_count__gte=per_item)
        moved = flips.update(status=Item.Status.COMPLETE)
        _move_queue_counts(queue, -moved)


def _move_queue_counts(queue: Queue, opened: int) -> None:
    """`opened` complete items opened (negative: open items completed), on the queue's
    counts; never below zero (the next agreement recomputation recounts them anyway)."""
    if opened:
        Queue.objects.filter(pk=queue.pk).update(
            items_open=Greatest(F("items_open") + opened, 0),
            items_complete=Greatest(F("items_complete") - opened, 0),
        )


def _annotator(queue: Queue, username: str) -> User:
    """The user `username` if they annotate in `queue` (a member of it, or someone who
    answered there); else ValueError."""
    if len(username) > 150 or text_problem(username):
        raise ValueError("username: no such annotator in this queue.")
    answered = Annotation.objects.filter(queue=queue, user=OuterRef("pk"))
    user = (
        User.objects.filter(username=username)
        .filter(Q(review_queues=queue) | Q(Exists(answered)))
        .distinct()
        .first()
    )
    if user is None:
        raise ValueError("username: no such annotator in this queue.")
    return user
