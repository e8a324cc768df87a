"""Claiming items, answering and skipping them: the annotator's writes.

Concurrency contract: every decision about an item's free slots is made while holding
that item's row lock (PostgreSQL `FOR UPDATE`; SQLite serialises writers with IMMEDIATE
transactions). `item_claim_next` uses SKIP LOCKED, so annotators claiming at once take
different items instead of queueing on one.

Lock order, the same in every module of this app (claims, services, gate): item rows
first (several at once: in id order), then label rows, then the queue row (its item
counters). A transaction never locks an item after it has updated its queue; this is
what keeps an answer that completes an item (item, then counters) from deadlocking
with the gate (outcomes on items, then the recount).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.rows import instance_from_row, sql_columns
from core.scheduling import on_commit_once, schedule_task
from core.statements import statement_cursor, transaction_at_once
from feedback.models import Generation, Label
from review.agreement import canonical_values
from review.answers import validate_answers, validate_seconds_spent
from review.models import Annotation, AnnotatorExclusion, Assignment, Item, Question, Queue


def agreement_schedule(queue_id: int) -> bool:
    """Recompute a queue's agreement soon: once per debounce window however many answers
    arrive in it (in-process mode: at once). Never raises: it runs after the answer is
    committed, so with Redis down it logs and returns False, and the beat sweep
    `review.tasks.recompute_stale_agreements` finds the queue instead."""
    from review.tasks import recompute_queue_agreement

    return schedule_task(
        recompute_queue_agreement,
        args=(queue_id,),
        mark=f"gleaner:agreement-scheduled:{queue_id}",
        window=settings.GLEANER_AGREEMENT_DEBOUNCE_SECONDS,
        eager_raises=False,  # after commit: the answer stands; the sweep retries the queue
    )


def agreement_schedule_on_commit(queue_id: int) -> None:
    """Schedule a recomputation when the current transaction commits, once per queue
    however many answers the transaction holds (a bulk import is one recomputation).
    A rolled-back transaction takes its callback with it."""
    on_commit_once(("agreement", queue_id), partial(agreement_schedule, queue_id))


class ReviewConflict(Exception):
    """The request cannot be honoured in the item's current state (HTTP 409)."""


class ClaimBusy(Exception):
    """Items are left to claim, but other transactions held all of them for longer than a
    claim waits (HTTP 503 with Retry-After: asking again soon succeeds)."""


MAX_CLAIM_ATTEMPTS = 20
# How long a claim waits for an item's row lock when every claimable item is locked (an
# answer or the gate writing outcomes holds one for milliseconds).
CLAIM_LOCK_WAIT_MS = 3000
CLAIM_RETRY_AFTER_SECONDS = 1
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout


class _PassedOver(Exception):
    """Leaves a claim attempt's savepoint, releasing the lock on an item it cannot take."""


def _live_claims(now: datetime):
    return Assignment.objects.filter(
        item=OuterRef("pk"), status=Assignment.Status.CLAIMED, expires_at__gt=now
    )


def item_presentation(item: Item) -> dict:
    """Left/right order for items with two responses, drawn at random to avoid position
    bias, and recorded so answers can be mapped back."""
    if item.is_label_pair or item.is_free_pair:
        return {"order": [0, 1] if secrets.randbelow(2) else [1, 0]}
    return {}


def queue_counts_change(queue_id: int, **deltas: int) -> None:
    """Move a queue's item counts by status, e.g. open=-1, complete=1 (one UPDATE; call
    inside the transaction that changes the items)."""
    fields = {f"items_{status}": F(f"items_{status}") + delta for status, delta in deltas.items()}
    Queue.objects.filter(pk=queue_id).update(**fields)


def item_claim_next(*, queue: Queue, user: User, now: datetime | None = None) -> Assignment | None:
    """The caller's live claim in `queue`, else a new claim on the best free item, else None
    (nothing left for this caller). Raises ClaimBusy if items are left but stayed locked.

    Never offers an item the caller answered or skipped, nor one whose open slots
    (annotations wanted minus given minus live claims) are all taken, nor anything to an
    annotator excluded from the queue.
    """
    now = now or timezone.now()
    if not queue.is_active:  # a paused queue hands out nothing, however it is reached
        return None
    if connection.vendor == "postgresql":
        claimed = _claim_first_free(queue, user, now)
        if claimed is not None:
            return claimed
    # An annotator whose answers the queue's leads excluded is offered nothing there
    # (review/exclusions.py); the fast path's query checks the same.
    if AnnotatorExclusion.objects.filter(queue=queue, user=user, revoked_at__isnull=True).exists():
        return None
    # The careful path: a live claim to resume, items all locked (wait for one), a race
    # lost under the lock (pass over). It also serves SQLite.
    # Committed on its own, so that a claim waiting for an item's lock below holds no
    # other row (another tab of the same user may be answering that item).
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
    )
    passed_over: list[int] = []
    item: Item | None
    for _ in range(MAX_CLAIM_ATTEMPTS):
        item = None
        remaining = candidates.exclude(pk__in=passed_over)
        try:
            with transaction.atomic():
                item = remaining.select_for_update(skip_locked=True, of=("self",)).first()
                if item is None:
                    # SKIP LOCKED passed over rows someone holds right now (a claim, an
                    # answer, the gate writing outcomes): "nothing left" only if nothing
                    # is left without the lock either; else wait for the best of them.
                    first = remaining.values_list("pk", flat=True).first()
                    if first is None:
                        return None
                    item = _wait_for_item(first)
                    if item is None:  # completed or discarded while we waited
                        raise _PassedOver(first)
                # The candidate query's snapshot may predate a claim committed just before
                # we got the row lock (READ COMMITTED); recount now, under the lock, which
                # every claim and answer of this item must take first.
                taken = (
                    item.annotation_count
                    + Assignment.objects.filter(
                        item=item, status=Assignment.Status.CLAIMED, expires_at__gt=now
                    ).count()
                )
                if taken >= queue.annotations_per_item:
                    raise _PassedOver(item.pk)
                return Assignment.objects.create(
                    item=item,
                    queue=queue,
                    user=user,
                    claimed_at=now,
                    expires_at=now + timedelta(minutes=queue.claim_timeout_minutes),
                    presentation=item_presentation(item),
                )
        except _PassedOver as passed:
            passed_over.append(passed.args[0])
        except IntegrityError:
            # The caller's other tab claimed this item after our candidates were read (one
            # assignment per user and item): resume that claim, as a claim asked for later
            # would, rather than fail.
            live = (
                Assignment.objects.filter(
                    queue=queue, user=user, status=Assignment.Status.CLAIMED, expires_at__gt=now
                )
                .select_related("item")
                .first()
            )
            if live is not None:
                return live
            if item is not None:
                passed_over.append(item.pk)
    return None


# The claim in two statements under one item lock (PostgreSQL): the first free item, taken
# with SKIP LOCKED, then the claim inserted by a statement that recounts the item's slots in
# its own (later) snapshot, so a claim committed between the first statement's snapshot
# and its lock is counted. It also drops the caller's expired claims in the queue, and
# commits without waiting for the WAL flush (synchronous_commit off for this transaction
# only): a claim is a reservation that expires anyway, and the few lost in a crash are
# claimed again (or answered without a claim, while a slot is free). Answers stay durable.
_CLAIM_INSERT = """
WITH durability AS (
    SELECT set_config('synchronous_commit', 'off', true) AS setting
), expired AS (
    DELETE FROM review_assignment
    WHERE queue_id = %(queue)s AND user_id = %(user)s AND status = 'claimed'
        AND expires_at <= %(now)s
)
INSERT INTO review_assignment
    (item_id, queue_id, user_id, status, claimed_at, expires_at, presentation)
SELECT %(item)s, %(queue)s, %(user)s, 'claimed', %(now)s, %(expires)s, %(presentation)s::jsonb
WHERE (SELECT i.annotation_count FROM review_item i WHERE i.id = %(item)s AND i.status = 'open')
    + (SELECT count(*) FROM review_assignment h
       WHERE h.item_id = %(item)s AND h.status = 'claimed' AND h.expires_at > %(now)s)
    < %(per_item)s
    AND (SELECT setting FROM durability) = 'off'
ON CONFLICT (item_id, user_id) DO NOTHING
RETURNING id
"""


def _claim_first_free(queue: Queue, user: User, now: datetime) -> Assignment | None:
    """The caller's live claim in the queue, else a new claim on the best free item if one
    is free and unlocked; else None, and the careful path decides (PostgreSQL). The claim
    comes with its item and what `selectors.item_display` reads."""
    with transaction.atomic():
        with statement_cursor() as cursor:
            cursor.execute(
                _FIRST_FREE,
                {
                    "queue": queue.pk,
                    "user": user.pk,
                    "now": now,
                    "per_item": queue.annotations_per_item,
                },
            )
            row = cursor.fetchone()
        if row is None:  # the caller's own claim to resume, else the careful path decides
            return (
                Assignment.objects.filter(
                    queue=queue, user=user, status=Assignment.Status.CLAIMED, expires_at__gt=now
                )
                .select_related(
                    "item", "item__label", "item__label__generation", "item__generation"
                )
                .order_by("pk")
                .first()
            )
        item = _item_from_row(row)
        presentation = item_presentation(item)
        expires_at = now + timedelta(minutes=queue.claim_timeout_minutes)
        with statement_cursor() as cursor:
            cursor.execute(
                _CLAIM_INSERT,
                {
                    "queue": queue.pk,
                    "user": user.pk,
                    "item": item.pk,
                    "now": now,
                    "expires": expires_at,
                    "presentation": json.dumps(presentation),
                    "per_item": queue.annotations_per_item,
                },
            )
            inserted = cursor.fetchone()
    if inserted is None:  # taken meanwhile (or the caller's own expired claim on it)
        return None
    return Assignment(
        pk=inserted[0],
        item=item,
        queue=queue,
        user=user,
        status=Assignment.Status.CLAIMED,
        claimed_at=now,
        expires_at=expires_at,
        presentation=presentation,
    )


# The models `_FIRST_FREE` reads, in its column order: the item, its label, the label's
# generation, the item's generation (what `selectors.item_display` shows).
_DISPLAYED = (
    (Item, "i"),
    (Label, "l"),
    (Generation, "lg"),
    (Generation, "g"),
)


# The best free item of the queue, locked (SKIP LOCKED: claimers at once take different
# items), with what the page shows of it: the same filter as the careful path's candidates
# (open, not answered, skipped or held by the caller, a slot left after live claims), none
# while the caller holds a live claim in the queue. Written out rather than built by the ORM:
# compiling the equivalent queryset cost more than running it.
_FIRST_FREE = f"""
WITH candidate AS (
    SELECT i.id FROM review_item i
    WHERE i.queue_id = %(queue)s AND i.status = 'open'
        AND NOT EXISTS (
            SELECT 1 FROM review_annotatorexclusion x
            WHERE x.queue_id = %(queue)s AND x.user_id = %(user)s AND x.revoked_at IS NULL)
        AND NOT EXISTS (
            SELECT 1 FROM review_assignment h
            WHERE h.queue_id = %(queue)s AND h.user_id = %(user)s AND h.status = 'claimed'
                AND h.expires_at > %(now)s)
        AND NOT EXISTS (
            SELECT 1 FROM review_assignment m
            WHERE m.item_id = i.id AND m.user_id = %(user)s
                AND NOT (m.status = 'claimed' AND m.expires_at <= %(now)s))
        AND i.annotation_count + (
            SELECT count(*) FROM review_assignment c
            WHERE c.item_id = i.id AND c.status = 'claimed' AND c.expires_at > %(now)s
        ) < %(per_item)s
    ORDER BY i.priority DESC, i.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
SELECT {", ".join(sql_columns(model, alias) for model, alias in _DISPLAYED)}
FROM candidate
JOIN review_item i ON i.id = candidate.id
LEFT JOIN feedback_label l ON l.id = i.label_id
LEFT JOIN feedback_generation lg ON lg.id = l.generation_id
LEFT JOIN feedback_generation g ON g.id = i.generation_id
"""  # noqa: S608 - table and column names from the models, values bound


def _item_from_row(row: tuple) -> Item:
    parts: list[models.Model | None] = []
    start = 0
    for model, _ in _DISPLAYED:
        width = len(model._meta.concrete_fields)
        parts.append(instance_from_row(model, list(row[start : start + width])))
        start += width
    item, label, label_generation, generation = parts
    if not isinstance(item, Item):  # the candidate's own row: never missing
        raise TypeError("The claimed item's row is missing.")
    if isinstance(label, Label):
        label.generation = label_generation  # type: ignore[assignment]
    item.label = label  # type: ignore[assignment]
    item.generation = generation  # type: ignore[assignment]
    return item


def _wait_for_item(pk: int) -> Item | None:
    """The open item `pk`, locked, after waiting at most CLAIM_LOCK_WAIT_MS for whoever
    holds it; None if it is no longer open. Raises ClaimBusy when the wait runs out.
    Call inside a transaction that holds no other item lock (see the lock order)."""
    if connection.vendor != "postgresql":  # SQLite: writers are serialised, nothing to wait
        return Item.objects.filter(pk=pk, status=Item.Status.OPEN).first()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        (previous,) = cursor.fetchone()
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{int(CLAIM_LOCK_WAIT_MS)}ms"]
        )
    try:
        with transaction.atomic():  # a savepoint: a timed-out lock wait leaves it usable
            return Item.objects.select_for_update().filter(pk=pk, status=Item.Status.OPEN).first()
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise ClaimBusy("Items are being written; ask again in a moment.") from error
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def annotation_submit(
    *,
    item: Item,
    user: User,
    answers: object,
    seconds_spent: float | None = None,
    now: datetime | None = None,
) -> Annotation:
    """Store the caller's answers to `item`. Validates before writing anything.

    Without a live claim it claims and answers at once, if a slot is free. Raises
    AnswersInvalid (nothing stored) or ReviewConflict (answered already / no slot left).
    """
    return annotation_submit_to(
        queue=item.queue,
        item_id=item.pk,
        user=user,
        answers=answers,
        seconds_spent=seconds_spent,
        now=now,
    )


def annotation_submit_to(
    *,
    queue: Queue,
    item_id: int,
    user: User,
    answers: object,
    seconds_spent: float | None = None,
    now: datetime | None = None,
    questions: list[Question] | None = None,
) -> Annotation:
    """`annotation_submit` by the item's id, without reading the item first: raises
    Item.DoesNotExist if `item_id` is no item of `queue` (after validating the answers).
    Validates against `questions` (the queue's, in order), else reads `queue.questions`."""
    now = now or timezone.now()
    if questions is None:
        questions = list(queue.questions.all())
    cleaned = validate_answers(questions, answers)
    seconds_spent = validate_seconds_spent(seconds_spent)
    if connection.vendor == "postgresql":
        return _submit_postgresql(queue, item_id, user, cleaned, seconds_spent, now)
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item_id, queue=queue)
        if item.status == Item.Status.DISCARDED:
            raise ReviewConflict(CONFLICTS["discarded"])
        mine = Assignment.objects.filter(item=item, user=user).first()
        if mine is not None and mine.status == Assignment.Status.SUBMITTED:
            raise ReviewConflict(CONFLICTS["answered"])
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
                raise ReviewConflict(CONFLICTS["full"])
        presentation = mine.presentation if mine is not None else {}
        try:
            with transaction.atomic():
                annotation = Annotation.objects.create(
                    item=item,
                    queue=queue,
                    user=user,
                    answers=cleaned,
                    values=canonical_values(
                        cleaned,
                        presentation,
                        is_label_pair=item.is_label_pair,
                    ),
                    presentation=presentation,
                    seconds_spent=seconds_spent,
                    created_at=now,
                )
        except IntegrityError:
            raise ReviewConflict(CONFLICTS["answered"]) from None
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


CONFLICTS = {
    "discarded": "This item was discarded.",
    "answered": "You already answered this item.",
    "full": "This item needs no more annotations.",
}

# The answer in one statement, run under the item's lock (taken by the statement before it,
# so this one's snapshot sees every write committed before the lock was granted): the same
# decisions as the portable path (discarded, answered already, no free slot), then the
# annotation, the caller's assignment marked submitted, the item's count and status, and
# the queue's counters when the answer completes the item.
_SUBMIT = """
WITH mine AS (
    SELECT status, expires_at FROM review_assignment
    WHERE item_id = %(item)s AND user_id = %(user)s
), verdict AS (
    SELECT i.status AS before, CASE
        WHEN i.status = 'discarded' THEN 'discarded'
        WHEN EXISTS (SELECT 1 FROM mine WHERE status = 'submitted') THEN 'answered'
        WHEN EXISTS (SELECT 1 FROM mine WHERE status = 'claimed' AND expires_at > %(now)s)
            THEN 'ok'
        WHEN i.annotation_count + (
            SELECT count(*) FROM review_assignment o
            WHERE o.item_id = i.id AND o.status = 'claimed' AND o.expires_at > %(now)s
                AND o.user_id <> %(user)s
        ) >= %(per_item)s THEN 'full'
        ELSE 'ok' END AS outcome
    FROM review_item i WHERE i.id = %(item)s
), annotation AS (
    INSERT INTO review_annotation
        (item_id, queue_id, user_id, answers, "values", presentation, seconds_spent, created_at)
    SELECT %(item)s, %(queue)s, %(user)s, %(answers)s::jsonb, %(values)s::jsonb,
        %(presentation)s::jsonb, %(seconds)s::double precision, %(now)s
    FROM verdict WHERE outcome = 'ok'
    ON CONFLICT (item_id, user_id) DO NOTHING
    RETURNING id
), assignment AS (
    INSERT INTO review_assignment
        (item_id, queue_id, user_id, status, claimed_at, expires_at, presentation)
    SELECT %(item)s, %(queue)s, %(user)s, 'submitted', %(now)s, %(now)s, %(presentation)s::jsonb
    FROM annotation
    ON CONFLICT (item_id, user_id) DO UPDATE SET queue_id = EXCLUDED.queue_id,
        status = EXCLUDED.status, expires_at = EXCLUDED.expires_at,
        presentation = EXCLUDED.presentation
), counted AS (
    UPDATE review_item SET annotation_count = annotation_count + 1,
        status = CASE WHEN annotation_count + 1 >= %(per_item)s THEN 'complete' ELSE status END
    WHERE id = %(item)s AND EXISTS (SELECT 1 FROM annotation)
    RETURNING status
), completed AS (
    SELECT 1 FROM verdict
    WHERE before = 'open' AND EXISTS (SELECT 1 FROM counted WHERE status = 'complete')
), counters AS (
    UPDATE review_queue SET items_open = items_open - 1, items_complete = items_complete + 1
    WHERE id = %(queue)s AND EXISTS (SELECT 1 FROM completed)
)
SELECT (SELECT outcome FROM verdict), (SELECT id FROM annotation)
"""


# What the canonical values need, read without a lock: whether the item is a derived pair,
# and the order the caller was shown it in (fixed when they claimed it).
_SUBMIT_READ = """
SELECT i.label_id IS NOT NULL AND i.reason_detail ->> 'kind' = %s, a.presentation
FROM review_item i
LEFT JOIN review_assignment a ON a.item_id = i.id AND a.user_id = %s
WHERE i.id = %s AND i.queue_id = %s
"""

_LOCK_ITEM = "SELECT 1 FROM review_item WHERE id = %s AND queue_id = %s FOR UPDATE"


def _submit_postgresql(
    queue: Queue,
    item_id: int,
    user: User,
    cleaned: dict,
    seconds_spent: float | None,
    now: datetime,
) -> Annotation:
    """`annotation_submit_to` on PostgreSQL: what the values need read first, then the
    item locked and `_SUBMIT` in one transaction sent at once (`transaction_at_once`):
    two round trips, and the item's lock is held only while PostgreSQL runs the two."""
    with statement_cursor() as cursor:
        cursor.execute(_SUBMIT_READ, [Label.Kind.PREFERENCE_PAIR.value, user.pk, item_id, queue.pk])
        row = cursor.fetchone()
    if row is None:
        raise Item.DoesNotExist("No such item in this queue.")
    is_label_pair, presentation = bool(row[0]), row[1]
    if isinstance(presentation, str):
        presentation = json.loads(presentation)
    presentation = presentation or {}
    values = canonical_values(cleaned, presentation, is_label_pair=is_label_pair)
    submitted = transaction_at_once(
        [
            (_LOCK_ITEM, [item_id, queue.pk]),
            (
                _SUBMIT,
                {
                    "item": item_id,
                    "user": user.pk,
                    "queue": queue.pk,
                    "now": now,
                    "per_item": queue.annotations_per_item,
                    "answers": json.dumps(cleaned),
                    "values": json.dumps(values),
                    "presentation": json.dumps(presentation),
                    "seconds": seconds_spent,
                },
            ),
        ]
    )
    outcome, annotation_id = submitted or (None, None)
    if outcome is None:  # the item was deleted meanwhile
        raise Item.DoesNotExist("No such item in this queue.")
    if outcome != "ok":
        raise ReviewConflict(CONFLICTS[outcome])
    if annotation_id is None:  # an annotation without a submitted assignment
        raise ReviewConflict(CONFLICTS["answered"])
    agreement_schedule_on_commit(queue.pk)
    return Annotation(
        pk=annotation_id,
        item_id=item_id,
        queue=queue,
        user=user,
        answers=cleaned,
        values=values,
        presentation=presentation,
        seconds_spent=seconds_spent,
        created_at=now,
    )


def item_skip(*, item: Item, user: User, reason: str = "", now: datetime | None = None) -> None:
    """Release the caller's claim; the item is not offered to them again. `reason` (the
    caller's words, checked by the form: at most 500 characters) is kept for leads."""
    now = now or timezone.now()
    with transaction.atomic():
        mine = Assignment.objects.select_for_update().filter(item=item, user=user).first()
        if mine is not None and mine.status == Assignment.Status.SUBMITTED:
            raise ReviewConflict("You already answered this item.")
        Assignment.objects.update_or_create(
            item=item,
            user=user,
            defaults={
                "status": Assignment.Status.SKIPPED,
                "expires_at": now,
                "skip_reason": reason,
            },
            create_defaults={
                "queue_id": item.queue_id,
                "status": Assignment.Status.SKIPPED,
                "claimed_at": now,
                "expires_at": now,
                "skip_reason": reason,
            },
        )


def claims_reap(*, now: datetime | None = None) -> int:
    """Delete expired claims, freeing their slots; how many."""
    now = now or timezone.now()
    deleted, _ = Assignment.objects.filter(
        status=Assignment.Status.CLAIMED, expires_at__lte=now
    ).delete()
    return deleted
