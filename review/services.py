"""Writes of the review app. Each function owns its transaction (or states that it runs
inside its caller's). Row locks are taken in the app's one order, items before the queue
row (see review/claims.py): e.g. a discard locks the item, then moves the queue's counts."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any, cast

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from core.bulk import insert_ignoring_conflicts
from core.jsontext import dumps_text
from core.statements import binding_cursor
from core.storable import check_text, printable
from feedback.models import Label
from feedback.services import labels_set_review_outcome
from review.agreement import domain_of, gated
from review.answers import AnswersInvalid
from review.claims import agreement_schedule_on_commit, queue_counts_change
from review.models import Adjudication, Item, ItemFlag, Question, Queue
from tenancy.models import Project

# The page shows a pair as a Left and a Right answer and says under "Claim to check" which
# one the user kept; a retry flag as one answer, the first of the chain. The wording here
# names what the page shows.
HIGH_RETRY_GUIDELINES = (
    "The user regenerated three or more times in a row.\n\n"
    "* **Pairs** (a *Left* and a *Right* answer): the claim says which one the user kept. "
    "Is it clearly better than the other? Equally good or equally bad: answer **no**.\n"
    "* **Retry flags** (one answer, the first of the chain): did that answer fail the user?\n\n"
    "Then say why you think the user retried."
)
HIGH_RETRY_VERDICT = "Is the derived label right?"
HIGH_RETRY_CAUSES = ["model failed", "user exploring", "prompt unclear", "other"]
# Words for the points of the 1-5 quality scale, shown under the numbers.
QUALITY_ANCHORS = {"1": "Unusable", "2": "Poor", "3": "Acceptable", "4": "Good", "5": "Perfect"}

DEFAULT_QUEUES: dict[str, dict] = {
    Queue.Reason.LOW_CONFIDENCE: {
        "name": "Low-confidence labels",
        "guidelines": (
            "A label derived from behaviour was not confident enough to train on.\n\n"
            "* **Pairs**: is the *chosen* answer really better than the *rejected* one?\n"
            "* **Completions**: is the answer good (positive) or bad (negative) as labelled?"
        ),
        "questions": [
            ("verdict", "choice", "Is the derived label right?", ["yes", "no", "unsure"]),
            (
                "quality",
                "rating",
                "Quality of the answer the user preferred (or the one answer)",
                (1, 5),
            ),
            ("note", "text", "Why?", None),
        ],
    },
    Queue.Reason.HIGH_RETRY: {
        "name": "High-retry chains",
        "guidelines": HIGH_RETRY_GUIDELINES,
        "questions": [
            # The verdict comes first: the first choice question decides (review.agreement),
            # and "yes" accepts, so a pair people confirm becomes training data.
            ("verdict", "choice", HIGH_RETRY_VERDICT, ["yes", "no", "unsure"]),
            ("cause", "choice", "Why did the user retry?", HIGH_RETRY_CAUSES),
            ("note", "text", "Notes", None),
        ],
    },
    Queue.Reason.ABANDONED: {
        "name": "Abandoned sessions",
        "guidelines": (
            "The session ended without success. The answer shown is the session's last one: "
            "did it fail the user?"
        ),
        "questions": [
            ("verdict", "choice", "Did the last answer fail the user?", ["yes", "no", "unsure"]),
            ("quality", "rating", "Quality of the last answer", (1, 5)),
            ("note", "text", "What went wrong?", None),
        ],
    },
    Queue.Reason.QA_SAMPLE: {
        "name": "QA sample of auto-accepted labels",
        "guidelines": (
            "A random sample of labels that went straight to training data. Your answers "
            "measure the precision of each rule."
        ),
        "questions": [
            ("verdict", "choice", "Is the derived label right?", ["yes", "no", "unsure"]),
            ("note", "text", "Why?", None),
        ],
    },
}


def project_queues_ensure(*, project: Project) -> dict[str, Queue]:
    """The project's default queue per routing reason, created with default questions if
    missing. Safe to call concurrently (the unique constraint decides)."""
    queues = {q.reason: q for q in Queue.objects.filter(project=project).exclude(reason="")}
    for reason, spec in DEFAULT_QUEUES.items():
        if reason in queues:
            continue
        with transaction.atomic():
            queue, created = Queue.objects.get_or_create(
                project=project,
                reason=reason,
                defaults={"name": spec["name"], "guidelines": spec["guidelines"]},
            )
            if created:
                Question.objects.bulk_create(
                    _default_question(queue, position, *question)
                    for position, question in enumerate(spec["questions"])
                )
        queues[reason] = queue
    return queues


def _default_question(
    queue: Queue, position: int, key: str, type_: str, prompt: str, extra: Any
) -> Question:
    question = Question(
        queue=queue, key=key, type=type_, prompt=prompt, position=position, required=True
    )
    if type_ == Question.Type.CHOICE:
        question.choices = list(extra)
    elif type_ == Question.Type.RATING:
        question.min_value, question.max_value = extra
        question.level = Question.Level.ORDINAL
        if extra == (1, 5):
            question.anchors = dict(QUALITY_ANCHORS)
    else:
        question.required = False
    return question


# The boolean a rule's labels carry, for items routed before `reason_detail` held it.
RULE_LABEL_VALUE: dict[str, bool] = {
    "session_abandoned": False,
    "session_completed": True,
    "copy_accept": True,
    "share_accept": True,
}


def labels_route(*, label_ids: Iterable[int]) -> int:
    """Put labels that need review into their project's default queue for their reason,
    after withdrawing the routed items whose label changed meaning (`items_withdraw_stale`).

    Called inside the derivation transaction (see GLEANER_LABEL_CONSUMERS) with every label
    just derived. Idempotent: a label gets one item per queue however often it is
    re-derived, and items whose label kept its meaning (with their annotations) are left
    alone.
    """
    label_ids = list(label_ids)
    items_withdraw_stale(label_ids=label_ids)
    if connection.vendor == "postgresql":
        return _labels_route_postgres(label_ids)
    return _labels_route_portable(label_ids)


def _labels_route_portable(label_ids: list[int]) -> int:
    """`labels_route`'s routing through the ORM (SQLite; the reference the PostgreSQL path
    is tested against)."""
    labels = list(
        Label.objects.filter(pk__in=label_ids, needs_review=True, active=True)
        .exclude(review_reason="")
        .only(
            "id",
            "project_id",
            "review_reason",
            "rule",
            "kind",
            "label",
            "confidence",
            "generation_id",
        )
    )
    by_project: dict[int, list[Label]] = {}
    for label in labels:
        by_project.setdefault(label.project_id, []).append(label)
    items = []
    for project_id, project_labels in by_project.items():
        queues = project_queues_ensure(project=Project(pk=project_id))
        for label in project_labels:
            items.append(
                Item(
                    queue=queues[label.review_reason],
                    label=label,
                    generation_id=label.generation_id,
                    reason=label.review_reason,
                    reason_detail={
                        "rule": label.rule,
                        "kind": label.kind,
                        "label": label.label,
                        "confidence": label.confidence,
                    },
                    # Abandoned and high-retry items first: they are always reviewed.
                    priority=1 if label.review_reason in ("abandoned", "high_retry") else 0,
                )
            )
    # Only the rows actually inserted count: a label already in its queue is skipped.
    inserted = insert_ignoring_conflicts(
        Item, items, unique_fields=["queue", "label"], returning=["queue"]
    )
    for queue_id, n in Counter(queue_id for (queue_id,) in inserted).items():
        queue_counts_change(queue_id, open=n)
    return len(inserted)


# Item columns `labels_route` writes per label on PostgreSQL; every other column takes
# the model's default for a new item.
_ROUTE_COLUMNS = ("queue", "label", "generation", "reason", "reason_detail", "priority")


def _labels_route_postgres(label_ids: list[int]) -> int:
    """`labels_route`'s routing in three statements whatever the number of labels: the
    labels as tuples (one array parameter), the items as one INSERT over unnest() of one
    array per column, and one UPDATE of the queues' counts. Writes what the portable path
    writes, items in label id order."""
    label_table = connection.ops.quote_name(Label._meta.db_table)
    with binding_cursor() as cursor:
        cursor.execute(
            "SELECT id, project_id, review_reason, rule, kind, label, confidence, "  # noqa: S608 - names from the model
            f"generation_id FROM {label_table} WHERE id = ANY(%b::bigint[]) AND needs_review "
            "AND active AND review_reason <> '' ORDER BY id",
            [label_ids],
        )
        labels = cursor.fetchall()
    if not labels:
        return 0
    project_ids = sorted({label[1] for label in labels})
    queues: dict[int, dict[str, int]] = {project_id: {} for project_id in project_ids}
    with binding_cursor() as cursor:
        cursor.execute(
            f"SELECT project_id, reason, id FROM {connection.ops.quote_name(Queue._meta.db_table)} "  # noqa: S608 - names from the model
            "WHERE project_id = ANY(%b::bigint[]) AND reason <> ''",
            [project_ids],
        )
        for project_id, reason, queue_id in cursor.fetchall():
            queues[project_id][reason] = queue_id
    for project_id, by_reason in queues.items():
        if len(by_reason) < len(DEFAULT_QUEUES):  # a project's first labels: create them
            ensured = project_queues_ensure(project=Project(pk=project_id))
            by_reason.update((reason, queue.pk) for reason, queue in ensured.items())
    dumps = dumps_text
    columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
    for pk, project_id, reason, rule, kind, value, confidence, generation_id in labels:
        row = (
            queues[project_id][reason],
            pk,
            generation_id,
            reason,
            dumps({"rule": rule, "kind": kind, "label": value, "confidence": confidence}),
            # Abandoned and high-retry items first: they are always reviewed.
            1 if reason in ("abandoned", "high_retry") else 0,
        )
        for column, cell in zip(columns, row, strict=True):
            column.append(cell)
    sql, defaulted = _route_insert()
    defaults = [field.get_db_prep_save(field.get_default(), connection) for field in defaulted]
    with binding_cursor() as cursor:
        cursor.execute(sql, [*defaults, *columns])
        inserted = cursor.fetchall()
    counts = sorted(Counter(queue_id for (queue_id,) in inserted).items())
    if counts:
        queue_table = connection.ops.quote_name(Queue._meta.db_table)
        with binding_cursor() as cursor:
            cursor.execute(
                f"UPDATE {queue_table} AS q SET items_open = q.items_open + v.n "  # noqa: S608 - names from the model
                "FROM unnest(%b::bigint[], %b::integer[]) AS v(id, n) WHERE q.id = v.id",
                [[queue_id for queue_id, _ in counts], [n for _, n in counts]],
            )
    return len(inserted)


@cache
def _route_insert() -> tuple[str, list[Field]]:
    """INSERT of routed items: the defaulted columns' values as parameters (the fields
    returned, in order), then one array per `_ROUTE_COLUMNS` column; a label already in
    its queue is skipped."""
    quote = connection.ops.quote_name
    defaulted = [
        field
        for field in Item._meta.concrete_fields
        if not field.primary_key and field.name not in _ROUTE_COLUMNS
    ]
    routed = [cast(Field, Item._meta.get_field(name)) for name in _ROUTE_COLUMNS]
    types = ("bigint", "bigint", "bigint", "text", "jsonb", "integer")
    columns = ", ".join(quote(cast(str, field.column)) for field in [*defaulted, *routed])
    values = ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in defaulted)
    arrays = ", ".join(f"%b::{t}[]" for t in types)
    sql = (
        f"INSERT INTO {quote(Item._meta.db_table)} ({columns}) "  # noqa: S608 - names from the model
        f"SELECT {values}, v.* FROM unnest({arrays}) AS v "
        "ON CONFLICT DO NOTHING RETURNING queue_id"
    )
    return sql, defaulted


def _stale(detail: dict, reason: str, label: dict) -> str | None:
    """Why an item routed with `detail` for `reason` no longer asks the right question
    about `label` (its current kind, value and routing), or None if it still does."""
    if not label["active"]:
        return "the log no longer supports the label"
    old_kind = detail.get("kind")
    if old_kind and old_kind != label["kind"]:
        return f"kind {old_kind} -> {label['kind']}"
    old_value = (
        detail["label"] if "label" in detail else RULE_LABEL_VALUE.get(detail.get("rule", ""))
    )
    if old_value is not None and old_value != label["label"]:
        return f"label {old_value} -> {label['label']}"
    if label["needs_review"] and label["review_reason"] and label["review_reason"] != reason:
        return f"reason {reason} -> {label['review_reason']}"
    return None


_ROUTED_FIELDS = (
    "id",
    "reason",
    "reason_detail",
    "label_id",
    "label__kind",
    "label__label",
    "label__rule",
    "label__needs_review",
    "label__review_reason",
    "label__active",
)


def _routed_items_portable(label_ids: list[int]) -> list[dict[str, Any]]:
    """The routed items of these labels not discarded, with their label's fields."""
    return list(
        Item.objects.filter(label_id__in=label_ids, reason__in=Queue.Reason.values)
        .exclude(status=Item.Status.DISCARDED)
        .values(*_ROUTED_FIELDS)
    )


def _routed_items_postgres(label_ids: list[int]) -> list[dict[str, Any]]:
    """`items_withdraw_stale`'s rows (routed items of these labels not discarded, with
    their label's fields) with the ids as one array parameter, as the ORM's `values()`
    gives them."""
    quote = connection.ops.quote_name
    reasons = list(Queue.Reason.values)
    with binding_cursor() as cursor:
        cursor.execute(
            "SELECT i.id, i.reason, i.reason_detail, i.label_id, l.kind, l.label, l.rule, "  # noqa: S608 - names from the model
            "l.needs_review, l.review_reason, l.active "
            f"FROM {quote(Item._meta.db_table)} AS i "
            f"JOIN {quote(Label._meta.db_table)} AS l ON l.id = i.label_id "
            "WHERE i.label_id = ANY(%b::bigint[]) AND i.reason = ANY(%b::text[]) "
            "AND i.status <> %s",
            [label_ids, reasons, Item.Status.DISCARDED.value],
        )
        rows = cursor.fetchall()
    loads = json.loads
    return [
        dict(
            zip(
                _ROUTED_FIELDS,
                (*row[:2], loads(row[2]) if isinstance(row[2], str) else row[2], *row[3:]),
                strict=True,
            )
        )
        for row in rows
    ]


def items_withdraw_stale(*, label_ids: list[int]) -> int:
    """Withdraw the routed items of these labels whose label changed meaning since it was
    routed (a late outcome turned an abandoned session into a completed one, say): the
    item's question would now mean the opposite; or that the log no longer supports at all
    (a later edit or a thumbs down took a copy's acceptance away): nothing left to ask.

    A withdrawn item is discarded (never claimable, its answers ignored by the gate) and
    detached from its label, keeping what it was about in `reason_detail["withdrawn"]`;
    the label's review outcome, which answered the old question, is cleared. The label is
    then routed afresh if it still needs review. Runs inside the caller's transaction;
    items are locked in id order before the queue rows (the app's lock order).
    """
    if not label_ids:
        return 0
    if connection.vendor == "postgresql":
        rows = _routed_items_postgres(label_ids)
    else:
        rows = _routed_items_portable(label_ids)
    stale: dict[int, dict] = {}
    for row in rows:
        label = {
            "kind": row["label__kind"],
            "label": row["label__label"],
            "needs_review": row["label__needs_review"],
            "review_reason": row["label__review_reason"],
            "active": row["label__active"],
        }
        why = _stale(row["reason_detail"] or {}, row["reason"], label)
        if why is not None:
            detail = dict(row["reason_detail"] or {})
            detail["withdrawn"] = {"label": row["label_id"], "now": row["label__rule"], "why": why}
            stale[row["id"]] = {"detail": detail, "label_id": row["label_id"]}
    if not stale:
        return 0
    locked = (
        Item.objects.select_for_update()
        .filter(pk__in=list(stale))
        .exclude(status=Item.Status.DISCARDED)
        .order_by("pk")
        .values_list("pk", "queue_id", "status")
    )
    moved: Counter[tuple[int, str]] = Counter()
    for pk, queue_id, status in list(locked):
        Item.objects.filter(pk=pk).update(
            status=Item.Status.DISCARDED,
            label=None,
            reason_detail=stale[pk]["detail"],
            decision=Item.Decision.EXCLUDED,
            decision_reason="withdrawn: its label changed meaning",
        )
        moved[(queue_id, status)] += 1
    for (queue_id, status), n in moved.items():
        queue_counts_change(queue_id, **{status: -n, "discarded": n})
        agreement_schedule_on_commit(queue_id)
    labels_set_review_outcome(outcomes={v["label_id"]: ("", "") for v in stale.values()})
    return sum(moved.values())


def queue_create(
    *,
    project: Project,
    name: str,
    questions: list[dict],
    members: list,
    guidelines: str = "",
    annotations_per_item: int = 3,
    min_item_agreement: float = 0.66,
    min_alpha: float = 0.667,
    claim_timeout_minutes: int = 30,
    agreement_tolerance: float = 0.0,
) -> Queue:
    """A custom queue with its questions and members (already validated by the caller)."""
    with transaction.atomic():
        queue = Queue.objects.create(
            project=project,
            name=name,
            guidelines=guidelines,
            annotations_per_item=annotations_per_item,
            min_item_agreement=min_item_agreement,
            min_alpha=min_alpha,
            claim_timeout_minutes=claim_timeout_minutes,
            agreement_tolerance=agreement_tolerance,
        )
        Question.objects.bulk_create(
            Question(
                queue=queue,
                key=q["key"],
                type=q["type"],
                prompt=q["prompt"],
                choices=q.get("choices") or [],
                min_value=q.get("min"),
                max_value=q.get("max"),
                anchors=q.get("anchors") or {},
                required=q.get("required", True),
                level=q.get("level")
                or (Question.Level.ORDINAL if q["type"] == "rating" else Question.Level.NOMINAL),
                position=position,
            )
            for position, q in enumerate(questions)
        )
        queue.members.add(*members)
    return queue


def items_add(*, queue: Queue, items: list[dict]) -> list[int]:
    """Add items (already validated and resolved by the caller); their ids in order.

    Each dict holds one of `label` (a Label), `generation` (a Generation) or `content`.
    A label already in this queue is not added twice: its existing item id is returned.
    """
    with transaction.atomic():
        existing = dict(
            Item.objects.filter(
                queue=queue, label__in=[i["label"] for i in items if i.get("label")]
            ).values_list("label_id", "id")
        )
        new = []
        for spec in items:
            label = spec.get("label")
            if label is not None and label.pk in existing:
                continue
            new.append(
                Item(
                    queue=queue,
                    label=label,
                    generation=spec.get("generation") or (label.generation if label else None),
                    content=spec.get("content") or {},
                    reason=spec.get("reason", "api"),
                    reason_detail={"kind": label.kind, "rule": label.rule} if label else {},
                    priority=spec.get("priority", 0),
                )
            )
        created = iter(Item.objects.bulk_create(new))
        queue_counts_change(queue.pk, open=len(new))
        ids = []
        for spec in items:
            label = spec.get("label")
            if label is not None and label.pk in existing:
                ids.append(existing[label.pk])
            else:
                ids.append(next(created).pk)
    return ids


MAX_ADJUDICATION_NOTE = 5000


def item_adjudicate(*, item: Item, lead: User, decision: str, note: str = "") -> Adjudication:
    """A lead's final decision on an item (disputed, usually), kept apart from the
    annotations; the gate applies it at the next recomputation, scheduled here."""
    if decision not in Adjudication.Decision.values:
        raise ValueError(f"decision: must be one of {', '.join(Adjudication.Decision.values)}.")
    check_text("note", note, MAX_ADJUDICATION_NOTE)
    with transaction.atomic():
        adjudication, _ = Adjudication.objects.update_or_create(
            item=item, defaults={"decided_by": lead, "decision": decision, "note": note}
        )
        if decision == Adjudication.Decision.DISCARDED:
            before = (
                Item.objects.select_for_update().values_list("status", flat=True).get(pk=item.pk)
            )
            if before != Item.Status.DISCARDED:
                Item.objects.filter(pk=item.pk).update(status=Item.Status.DISCARDED)
                queue_counts_change(item.queue_id, **{before: -1, "discarded": 1})
        agreement_schedule_on_commit(item.queue_id)
    return adjudication


def item_set_gold(*, item: Item, answers: dict) -> dict:
    """Mark `item` as gold with its known answers (canonical values: for pairs 'chosen' /
    'rejected', not 'left' / 'right'). Raises AnswersInvalid naming the bad key."""
    questions = {q.key: q for q in gated(item.queue.questions.all())}
    errors = {}
    for key, value in answers.items():
        if key not in questions:
            errors[printable(str(key))] = "Not a gated question of this queue."
        elif value not in domain_of(questions[key]):
            errors[key] = f"Must be one of: {', '.join(map(str, domain_of(questions[key])))}."
    if errors or not answers:
        raise AnswersInvalid(errors or {"answers": "Give at least one known answer."})
    Item.objects.filter(pk=item.pk).update(gold_answers=answers)
    agreement_schedule_on_commit(item.queue_id)
    return answers


def items_hold_out(
    *, queue: Queue, item_ids: list[int] | None = None, share: float | None = None, seed: int = 0
) -> int:
    """Hold items out of training exports (they form the evaluation split): the given ones,
    or a random `share` of the queue's items not yet held out. Returns how many."""
    if item_ids is not None:
        return Item.objects.filter(queue=queue, pk__in=item_ids, held_out=False).update(
            held_out=True
        )
    if share is None or not 0 < share <= 1:
        raise ValueError("share: must be above 0 and at most 1.")
    ids = list(
        Item.objects.filter(queue=queue, held_out=False)
        .exclude(status=Item.Status.DISCARDED)
        .order_by("id")
        .values_list("id", flat=True)
    )
    chosen = random.Random(seed).sample(ids, round(len(ids) * share))  # noqa: S311 - sampling
    return Item.objects.filter(pk__in=chosen).update(held_out=True)


MAX_RESOLUTION = 5000


def flag_resolve(*, flag: ItemFlag, by: User, note: str = "", now: datetime | None = None) -> bool:
    """Resolve an open flag, with an optional note saying what was done. One conditional
    UPDATE, so two leads acting at once cannot both win: returns False if it was resolved
    already (by someone else, or by a repeated post), and nothing changes then.
    Raises ValueError ("note: ...") for a note that cannot be stored."""
    check_text("note", note, MAX_RESOLUTION)
    resolved = ItemFlag.objects.filter(pk=flag.pk, resolved_at__isnull=True).update(
        resolved_at=now or timezone.now(), resolved_by=by, resolution=note.strip()
    )
    return resolved == 1


def item_release_hold_out(*, item: Item) -> bool:
    """Put a held-out item back among the training items (the reverse of
    `items_hold_out`). Returns False if it was not held out."""
    return Item.objects.filter(pk=item.pk, held_out=True).update(held_out=False) == 1
