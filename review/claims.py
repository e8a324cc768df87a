"""Claiming items, answering and skipping them: the annotator's writes.

Concurrency contract: every decision about an item's free slots is made while holding
that item's row lock (PostgreSQL `FOR UPDATE`; SQLite serialises writers with IMMEDIATE
transactions). `item_claim_next` uses SKIP LOCKED, so annotators claiming at once take
different items instead of queueing on one.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from review.agreement import canonical_values
from review.answers import validate_answers, validate_seconds_spent
from review.models import Annotation, Assignment, Item, Queue


def agreement_schedule(queue_id: int) -> None:
    """Recompute a queue's agreement soon: once per debounce window however many answers
    arrive in it (in-process mode: at once)."""
    from review.tasks import recompute_queue_agreement

    if settings.CELERY_TASK_ALWAYS_EAGER:
        recompute_queue_agreement.delay(queue_id)
        return
    debounce = settings.GLEANER_AGREEMENT_DEBOUNCE_SECONDS
    if cache.add(f"gleaner:agreement-scheduled:{queue_id}", 1, timeout=debounce):
        recompute_queue_agreement.apply_async(args=[queue_id], countdown=debounce)


def agreement_schedule_on_commit(queue_id: int) -> None:
    """Schedule a recomputation when the current transaction commits, once per queue
    however many answers the transaction holds (a bulk import is one recomputation).
    A rolled-back transaction takes its callback with it."""
    connection = transaction.get_connection()
    for _, registered, _ in connection.run_on_commit:
        if getattr(registered, "agreement_queue_id", None) == queue_id:
            return
    run = partial(agreement_schedule, queue_id)
    run.agreement_queue_id = queue_id  # type: ignore[attr-defined]
    transaction.on_commit(run)


class ReviewConflict(Exception):
    """The request cannot be honoured in the item's current state (HTTP 409)."""


MAX_CLAIM_ATTEMPTS = 20


def _live_claims(now: datetime):
    return Assignment.objects.filter(
        item=OuterRef("pk"), status=Assignment.Status.CLAIMED, expires_at__gt=now
    )


def _presentation(item: Item) -> dict:
    """Left/right order for items with two responses, drawn at random to avoid position
    bias, and recorded so answers can be mapped back."""
    if item.label_id is not None and item.reason_detail.get("kind") == "preference_pair":
        return {"order": [0, 1] if secrets.randbelow(2) else [1, 0]}
    responses = item.content.get("responses") if isinstance(item.content, dict) else None
    if isinstance(responses, list) and len(responses) == 2:
        return {"order": [0, 1] if secrets.randbelow(2) else [1, 0]}
    return {}


def queue_counts_change(queue_id: int, **deltas: int) -> None:
    """Move a queue's item counts by status, e.g. open=-1, complete=1 (one UPDATE; call
    inside the transaction that changes the items)."""
    fields = {f"items_{status}": F(f"items_{status}") + delta for status, delta in deltas.items()}
    Queue.objects.filter(pk=queue_id).update(**fields)


def item_claim_next(
    *, queue: Queue, user: AbstractBaseUser, now: datetime | None = None
) -> Assignment | None:
    """The caller's live claim in `queue`, else a new claim on the best free item, else None.

    Never offers an item the caller answered or skipped, nor one whose open slots
    (annotations wanted minus given minus live claims) are all taken.
    """
    now = now or timezone.now()
    if not queue.is_active:  # a paused queue hands out nothing, however it is reached
        return None
    with transaction.atomic():
        Assignment.objects.filter(
            queue=queue, user=user, status=Assignment.Status.CLAIMED, expires_at__lte=now
        ).delete()
        live = (
            Assignment.objects.filter(queue=queue, user=user, status=Assignment.Status.CLAIMED)
            .select_related("item")
            .first()
        )
        if live is not None:
            return live
        held = _live_claims(now).order_by().values("item").annotate(n=Count("pk")).values("n")
        candidates = (
            Item.objects.filter(queue=queue, status=Item.Status.OPEN)
            .exclude(pk__in=Assignment.objects.filter(queue=queue, user=user).values("item"))
            .annotate(held=Coalesce(Subquery(held, output_field=IntegerField()), 0))
            .filter(annotation_count__lt=queue.annotations_per_item - F("held"))
            .order_by("-priority", "id")
            .select_for_update(skip_locked=True, of=("self",))
        )
        passed_over: list[int] = []
        for _ in range(MAX_CLAIM_ATTEMPTS):
            item = candidates.exclude(pk__in=passed_over).first()
            if item is None:
                return None
            # The candidate query's snapshot may predate a claim committed just before we
            # got the row lock (READ COMMITTED); recount now, under the lock, which every
            # claim and answer of this item must take first.
            taken = (
                item.annotation_count
                + Assignment.objects.filter(
                    item=item, status=Assignment.Status.CLAIMED, expires_at__gt=now
                ).count()
            )
            if taken < queue.annotations_per_item:
                return Assignment.objects.create(
                    item=item,
                    queue=queue,
                    user=user,
                    claimed_at=now,
                    expires_at=now + timedelta(minutes=queue.claim_timeout_minutes),
                    presentation=_presentation(item),
                )
            passed_over.append(item.pk)
        return None


def annotation_submit(
    *,
    item: Item,
    user: AbstractBaseUser,
    answers: object,
    seconds_spent: float | None = None,
    now: datetime | None = None,
) -> Annotation:
    """Store the caller's answers to `item`. Validates before writing anything.

    Without a live claim it claims and answers at once, if a slot is free. Raises
    AnswersInvalid (nothing stored) or ReviewConflict (answered already / no slot left).
    """
    now = now or timezone.now()
    queue = item.queue
    cleaned = validate_answers(list(queue.questions.all()), answers)
    seconds_spent = validate_seconds_spent(seconds_spent)
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item.pk)
        if item.status == Item.Status.DISCARDED:
            raise ReviewConflict("This item was discarded.")
        mine = Assignment.objects.filter(item=item, user=user).first()
        if mine is not None and mine.status == Assignment.Status.SUBMITTED:
            raise ReviewConflict("You already answered this item.")
        holds_slot = (
            mine is not None and mine.status == Assignment.Status.CLAIMED and mine.expires_at > now
        )
        if not holds_slot:
            others = (
                Assignment.objects.filter(
                    item=item, status=Assignment.Status.CLAIMED, expires_at__gt=now
                )
                .exclude(user=user)
                .count()
            )
            if item.annotation_count + others >= queue.annotations_per_item:
                raise ReviewConflict("This item needs no more annotations.")
        presentation = mine.presentation if mine is not None else {}
        try:
            with transaction.atomic():
                annotation = Annotation.objects.create(
                    item=item,
                    user=user,
                    answers=cleaned,
                    values=canonical_values(
                        cleaned,
                        presentation,
                        is_label_pair=item.reason_detail.get("kind") == "preference_pair",
                    ),
                    presentation=presentation,
                    seconds_spent=seconds_spent,
                    created_at=now,
                )
        except IntegrityError:
            raise ReviewConflict("You already answered this item.") from None
        Assignment.objects.update_or_create(
            item=item,
            user=user,
            defaults={
                "queue": queue,
                "status": Assignment.Status.SUBMITTED,
                "expires_at": now,
                "presentation": presentation,
            },
            create_defaults={
                "queue": queue,
                "status": Assignment.Status.SUBMITTED,
                "claimed_at": now,
                "expires_at": now,
            },
        )
        item.annotation_count += 1
        if (
            item.annotation_count >= queue.annotations_per_item
            and item.status != Item.Status.COMPLETE
        ):
            item.status = Item.Status.COMPLETE
            queue_counts_change(queue.pk, open=-1, complete=1)
        item.save(update_fields=["annotation_count", "status"])
        agreement_schedule_on_commit(queue.pk)
    return annotation


def item_skip(*, item: Item, user: AbstractBaseUser, now: datetime | None = None) -> None:
    """Release the caller's claim; the item is not offered to them again."""
    now = now or timezone.now()
    with transaction.atomic():
        mine = Assignment.objects.select_for_update().filter(item=item, user=user).first()
        if mine is not None and mine.status == Assignment.Status.SUBMITTED:
            raise ReviewConflict("You already answered this item.")
        Assignment.objects.update_or_create(
            item=item,
            user=user,
            defaults={"status": Assignment.Status.SKIPPED, "expires_at": now},
            create_defaults={
                "queue_id": item.queue_id,
                "status": Assignment.Status.SKIPPED,
                "claimed_at": now,
                "expires_at": now,
            },
        )


def claims_reap(*, now: datetime | None = None) -> int:
    """Delete expired claims, freeing their slots; how many."""
    now = now or timezone.now()
    deleted, _ = Assignment.objects.filter(
        status=Assignment.Status.CLAIMED, expires_at__lte=now
    ).delete()
    return deleted
