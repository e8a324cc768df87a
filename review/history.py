"""An annotator's history in a queue: changing an answer, undoing a skip, flagging an item;
and the lead's reopening of an item whose verdict is final.

When may an answer change? While the item's verdict is not final (`verdict_is_final`):
the gate has written no decision yet (the item waits for annotations, or is disputed and
waits for a lead), no lead has adjudicated it, and it is not discarded. Once final, only a
lead's `reopen_item` lets each of its annotators change their answers once more; the next
recomputation (scheduled by every change, as by every answer) then decides again.

Writes follow the app's lock order (review/claims.py): the item row first, then the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from core.storable import ID_MAX, check_text
from review.agreement import canonical_values
from review.answers import validate_answers
from review.claims import ReviewConflict, agreement_schedule_on_commit, item_presentation
from review.models import (
    Adjudication,
    Annotation,
    AnnotatorExclusion,
    Assignment,
    Item,
    ItemFlag,
    Question,
    Queue,
)

MAX_FLAG_REASON = 2000
HISTORY_LENGTH = 50
FINAL = "This item's verdict is final: ask a lead to reopen it to change your answers."


# The rule, without the database -----------------------------------------------------------


def verdict_is_final(item: Item, *, adjudicated_at: datetime | None) -> bool:
    """Has the item a verdict that answers may no longer move? Discarded, adjudicated by a
    lead, or decided by the gate (accepted, rejected, or excluded: the decision written
    onto its label). A pending or disputed item has no decision yet: its answers may still
    change, and a changed answer may settle a dispute."""
    return item.status == Item.Status.DISCARDED or adjudicated_at is not None or bool(item.decision)


def answers_changeable(
    item: Item, annotation: Annotation, *, adjudicated_at: datetime | None
) -> bool:
    """May `annotation`'s author change it? Yes while the verdict is not final; after it,
    only if a lead reopened the item after the verdict (after the adjudication, if any)
    and after this annotation's last change: a reopening allows each annotator one
    change. A discarded item is never reopened."""
    if not verdict_is_final(item, adjudicated_at=adjudicated_at):
        return True
    if item.status == Item.Status.DISCARDED or item.reopened_at is None:
        return False
    last_change = annotation.updated_at or annotation.created_at
    after_adjudication = adjudicated_at is None or item.reopened_at > adjudicated_at
    return after_adjudication and item.reopened_at > last_change


# Writes -------------------------------------------------------------------------------------


def reopen_item(*, item: Item, by: User, now: datetime | None = None) -> None:
    """A lead reopens `item` (whose verdict is final) so its annotators may change their
    answers again: each may change theirs once, and every change re-runs the queue's
    agreement and the gate (after commit, as answers do). Records when and by whom
    (`Item.reopened_at`, `reopened_by`).

    The caller checks that `by` leads the item's project. Raises ReviewConflict if the
    item is discarded (nothing is gated on it) or its verdict is not final yet (its
    answers can be changed already)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Item.objects.select_for_update().get(pk=item.pk)
        adjudicated_at = _adjudicated_at(locked)
        if locked.status == Item.Status.DISCARDED:
            raise ReviewConflict("This item was discarded: there is nothing to reopen.")
        if not verdict_is_final(locked, adjudicated_at=adjudicated_at):
            raise ReviewConflict("This item has no final verdict: its answers can change.")
        Item.objects.filter(pk=item.pk).update(reopened_at=now, reopened_by=by)
    item.reopened_at, item.reopened_by = now, by


def annotation_change(
    *,
    queue: Queue,
    item_id: int,
    user: User,
    answers: object,
    now: datetime | None = None,
    questions: list[Question] | None = None,
) -> Annotation:
    """Replace the caller's answers to an item they answered: answers and their values
    (mapped through the presentation the caller saw), `updated_at`; then the queue's
    agreement is recomputed after commit, as after an answer.

    Validates first (AnswersInvalid, nothing stored). Raises Annotation.DoesNotExist if
    the caller has no answer to `item_id` in `queue`, ReviewConflict if the item's verdict
    is final and no lead reopened it since (`answers_changeable`)."""
    now = now or timezone.now()
    if questions is None:
        questions = list(queue.questions.all())
    cleaned = validate_answers(questions, answers)
    if not 1 <= item_id <= ID_MAX:  # beyond what the database can bind
        raise Annotation.DoesNotExist("No such item in this queue.")
    with transaction.atomic():
        item = Item.objects.select_for_update().filter(pk=item_id, queue=queue).first()
        if item is None:
            raise Annotation.DoesNotExist("No such item in this queue.")
        annotation = Annotation.objects.get(item=item, user=user)
        if not answers_changeable(item, annotation, adjudicated_at=_adjudicated_at(item)):
            raise ReviewConflict(FINAL)
        annotation.answers = cleaned
        annotation.values = canonical_values(
            cleaned, annotation.presentation or {}, is_label_pair=item.is_label_pair
        )
        annotation.updated_at = now
        annotation.save(update_fields=["answers", "values", "updated_at"])
        agreement_schedule_on_commit(queue.pk)
    return annotation


def skip_undo(
    *, queue: Queue, item_id: int, user: User, now: datetime | None = None
) -> Assignment | None:
    """Undo the caller's skip of an item: if the item is open with a slot free, it becomes
    the caller's claim at once (releasing any other claim they hold in the queue, which
    goes back to the queue) and is returned; otherwise the skip is forgotten (the item may
    be offered to them again) and None is returned.

    Raises Assignment.DoesNotExist if the caller did not skip `item_id` in `queue`."""
    now = now or timezone.now()
    if not 1 <= item_id <= ID_MAX:
        raise Assignment.DoesNotExist("No such item in this queue.")
    with transaction.atomic():
        item = Item.objects.select_for_update().filter(pk=item_id, queue=queue).first()
        if item is None:
            raise Assignment.DoesNotExist("No such item in this queue.")
        mine = Assignment.objects.get(item=item, user=user, status=Assignment.Status.SKIPPED)
        held = (
            Assignment.objects.filter(
                item=item, status=Assignment.Status.CLAIMED, expires_at__gt=now
            )
            .exclude(user=user)
            .count()
        )
        if (
            not queue.is_active
            or item.status != Item.Status.OPEN
            or AnnotatorExclusion.objects.filter(
                queue=queue, user=user, revoked_at__isnull=True
            ).exists()
            or item.annotation_count + held >= queue.annotations_per_item
        ):
            mine.delete()
            return None
        # One live claim per annotator and queue: the work page shows the claim it finds.
        Assignment.objects.filter(queue=queue, user=user, status=Assignment.Status.CLAIMED).delete()
        mine.status = Assignment.Status.CLAIMED
        mine.claimed_at = now
        mine.expires_at = now + timedelta(minutes=queue.claim_timeout_minutes)
        mine.skip_reason = ""
        mine.presentation = mine.presentation or item_presentation(item)
        mine.save(
            update_fields=["status", "claimed_at", "expires_at", "skip_reason", "presentation"]
        )
    mine.item = item
    return mine


def item_flag(*, item: Item, user: User, reason: str, now: datetime | None = None) -> ItemFlag:
    """Flag `item` for its queue's leads with a reason (required, at most MAX_FLAG_REASON
    characters). Raises ValueError "reason: ..." for a reason that cannot be stored."""
    reason = reason.strip()
    if not reason:
        raise ValueError("reason: say what is wrong with the item.")
    check_text("reason", reason, MAX_FLAG_REASON)
    return ItemFlag.objects.create(
        item=item,
        queue_id=item.queue_id,
        user=user,
        reason=reason,
        created_at=now or timezone.now(),
    )


def _adjudicated_at(item: Item) -> datetime | None:
    return Adjudication.objects.filter(item=item).values_list("created_at", flat=True).first()


# Reads --------------------------------------------------------------------------------------


@dataclass
class AnsweredEntry:
    """One of my answers as the history lists it: the answers in the words I saw them
    in (e.g. "Left"), against each question's prompt."""

    annotation: Annotation
    item: Item
    shown: list[tuple[str, str]]
    changeable: bool

    @property
    def changed_at(self) -> datetime | None:
        return self.annotation.updated_at


def answers_shown(questions: list[Question], answers: dict[str, Any]) -> list[tuple[str, str]]:
    """(prompt, answer) pairs in the queue's order, as the annotator gave them."""
    shown = []
    for question in questions:
        value = answers.get(question.key)
        if value is None or value == "":
            continue
        text = str(value)
        shown.append((question.prompt, text[:1].upper() + text[1:] if text in SIDES else text))
    return shown


SIDES = ("left", "right")


def my_answers(
    queue: Queue, user: User, questions: list[Question], limit: int = HISTORY_LENGTH
) -> list[AnsweredEntry]:
    """My latest answers in the queue, newest first, each with whether I may change it
    (one query, whatever `limit`)."""
    annotations = (
        Annotation.objects.filter(queue=queue, user=user)
        .select_related("item", "item__adjudication")
        .order_by("-created_at", "-pk")[:limit]
    )
    entries = []
    for annotation in annotations:
        item = annotation.item
        adjudication = getattr(item, "adjudication", None)
        adjudicated_at = adjudication.created_at if adjudication is not None else None
        entries.append(
            AnsweredEntry(
                annotation=annotation,
                item=item,
                shown=answers_shown(questions, annotation.answers or {}),
                changeable=answers_changeable(item, annotation, adjudicated_at=adjudicated_at),
            )
        )
    return entries


def my_skips(queue: Queue, user: User, limit: int = HISTORY_LENGTH) -> list[Assignment]:
    """The items I skipped in the queue, latest first (one query)."""
    return list(
        Assignment.objects.filter(queue=queue, user=user, status=Assignment.Status.SKIPPED)
        .select_related("item")
        .order_by("-expires_at", "-pk")[:limit]
    )


def my_answer(queue: Queue, user: User, item_id: int) -> Annotation | None:
    """My answer to an item of the queue, with the item and what the work page shows of
    it (one query); None if I did not answer it."""
    if not 1 <= item_id <= ID_MAX:
        return None
    return (
        Annotation.objects.filter(queue=queue, item_id=item_id, user=user)
        .select_related(
            "item",
            "item__label",
            "item__label__generation",
            "item__generation",
            "item__adjudication",
        )
        .first()
    )


def my_previous_answer(
    queue: Queue, user: User, before: Annotation | None = None
) -> Annotation | None:
    """The answer I gave last in the queue (before `before`, if given): where "Previous"
    and Backspace go."""
    mine = Annotation.objects.filter(queue=queue, user=user)
    if before is not None:
        mine = mine.filter(created_at__lte=before.created_at).exclude(pk=before.pk)
        mine = mine.exclude(created_at=before.created_at, pk__gt=before.pk)
    return mine.order_by("-created_at", "-pk").only("pk", "item_id", "created_at").first()


def adjudicated_at_of(item: Item) -> datetime | None:
    """When a lead adjudicated `item` (its `adjudication` select_related), or None."""
    adjudication = getattr(item, "adjudication", None)
    return adjudication.created_at if adjudication is not None else None
