"""Reads of the review app. `access_*` functions check permission or raise Http404."""

from __future__ import annotations

import difflib
import json
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib.auth.models import AnonymousUser, User
from django.contrib.postgres.aggregates import JSONBAgg
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    JSONField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, JSONObject
from django.http import Http404

from core.storable import ID_MAX
from feedback.models import Label
from review.models import (
    AgreementSnapshot,
    Annotation,
    AnnotatorExclusion,
    Assignment,
    Item,
    ItemFlag,
    Question,
    Queue,
)
from tenancy.access import projects_for_user
from tenancy.models import Membership

if TYPE_CHECKING:  # django-stubs-ext is a development dependency: types only
    from django_stubs_ext import WithAnnotations


class QueueProgress(TypedDict):
    items_total: int
    mine_done: int


LEAD_ROLES = (Membership.Role.ADMIN, Membership.Role.LEAD)
REASON_TEXT = {
    "low_confidence": "Low confidence",
    "high_retry": "High retry",
    "abandoned": "Abandoned session",
    "qa_sample": "QA sample",
    "api": "Added over the API",
}


def is_project_lead(user: User | AnonymousUser, project_id: int) -> bool:
    return projects_for_user(user, LEAD_ROLES).filter(pk=project_id).exists()


def led_project_ids(user: User) -> set[int] | None:
    """Projects the user leads; None means all (superuser)."""
    if user.is_superuser:
        return None
    return set(projects_for_user(user, LEAD_ROLES).values_list("pk", flat=True))


def queues_for_user(user: User | AnonymousUser) -> QuerySet[Queue]:
    """Queues the user works in or leads (project admin or lead).

    Working in a queue takes both a place in `Queue.members` and a current membership of
    the queue's project: removing someone from a project ends their access to its queues
    at once, though the queue's member list still names them.
    """
    if not user.is_authenticated:
        return Queue.objects.none()
    queues = Queue.objects.select_related("project")
    if user.is_superuser:
        return queues
    joined = projects_for_user(user).values("pk")
    led = projects_for_user(user, LEAD_ROLES).values("pk")
    return queues.filter(Q(members=user, project_id__in=joined) | Q(project_id__in=led)).distinct()


def queues_with_progress(user: User) -> list[WithAnnotations[Queue, QueueProgress]]:
    """The user's active queues, each annotated with item counts and the user's own count
    (one query)."""
    mine = _submitted_count(user)
    return list(
        queues_for_user(user)
        .filter(is_active=True)
        .annotate(
            items_total=F("items_open") + F("items_complete"),
            mine_done=Coalesce(mine, 0),
        )
        .order_by("project__slug", "name")
    )


def access_queue(user: User | AnonymousUser, queue_id: int, *, lead: bool = False) -> Queue:
    """The queue if the user may work in it (or, with `lead`, manage it); else Http404."""
    if not 1 <= queue_id <= ID_MAX:  # beyond what the database can bind: no such queue
        raise Http404("No such queue.")
    queue = _queue_for_user(user, queue_id).first()
    if queue is None or (lead and not is_project_lead(user, queue.project_id)):
        raise Http404("No such queue.")
    return queue


class MineDone(TypedDict):
    mine_done: int


def access_work_queue(user: User, queue_id: int) -> WithAnnotations[Queue, MineDone]:
    """`access_queue` for the work page, with how many items the user answered in it
    (`mine_done`), counted in the same query."""
    queues = _queue_for_user(user, queue_id).annotate(mine_done=Coalesce(_submitted_count(user), 0))
    if connection.vendor == "postgresql":  # and its questions (`queue_questions`)
        queues = queues.annotate(questions_read=_questions_as_json())
    queue = queues.first()
    if queue is None:
        raise Http404("No such queue.")
    return queue


_QUESTION_FIELDS = (
    "id",
    "key",
    "type",
    "prompt",
    "choices",
    "min_value",
    "max_value",
    "required",
    "level",
    "anchors",
    "position",
)


def _questions_as_json() -> Subquery:
    """The outer queue's questions in order, as one JSON array (PostgreSQL)."""
    fields = JSONObject(**{name: name for name in _QUESTION_FIELDS})
    return Subquery(
        Question.objects.filter(queue=OuterRef("pk"))
        .order_by()
        .values("queue")
        .annotate(all=JSONBAgg(fields, order_by=("position", "id")))
        .values("all"),
        output_field=JSONField(),
    )


def _queue_for_user(user: User | AnonymousUser, queue_id: int) -> QuerySet[Queue]:
    """`queues_for_user` for one queue, without its DISTINCT (the membership is a test,
    not a join): the per-request check of every annotator's request."""
    if not user.is_authenticated:
        return Queue.objects.none()
    queues = Queue.objects.select_related("project").filter(pk=queue_id)
    if user.is_superuser:
        return queues
    member = Queue.members.through.objects.filter(queue_id=OuterRef("pk"), user_id=user.pk)
    joined = projects_for_user(user).values("pk")
    led = projects_for_user(user, LEAD_ROLES).values("pk")
    return queues.filter(Q(Exists(member), project_id__in=joined) | Q(project_id__in=led))


def _submitted_count(user: User) -> Subquery:
    """How many items of the outer queue the user answered (a subquery)."""
    return Subquery(
        Assignment.objects.filter(
            queue=OuterRef("pk"), user=user, status=Assignment.Status.SUBMITTED
        )
        .order_by()
        .values("queue")
        .annotate(n=Count("pk"))
        .values("n"),
        output_field=IntegerField(),
    )


def queue_questions(queue: Queue) -> list[Question]:
    """The queue's questions in order: as `access_work_queue` read them with the queue (no
    query), else read once and also cached as `queue.questions.all()` (ordered by position
    alone: all of one queue, no join for the queue's ordering)."""
    read = getattr(queue, "questions_read", None)
    if read is not None:
        return [Question(queue=queue, **{name: q[name] for name in _QUESTION_FIELDS}) for q in read]
    prefetch_related_objects(
        [queue], Prefetch("questions", queryset=Question.objects.order_by("position", "id"))
    )
    return list(queue.questions.all())


def access_item(queue: Queue, item_id: int) -> Item:
    if not 1 <= item_id <= ID_MAX:
        raise Http404("No such item.")
    item = Item.objects.filter(queue=queue, pk=item_id).first()
    if item is None:
        raise Http404("No such item.")
    return item


def queue_progress(queue: Queue) -> dict[str, int]:
    """Items by status, from the queue's counters (no count over its items)."""
    return {
        "open": queue.items_open,
        "complete": queue.items_complete,
        "discarded": queue.items_discarded,
        "annotations_per_item": queue.annotations_per_item,
    }


def annotator_progress(queue: Queue, user: User) -> dict[str, int]:
    """Items complete of all live items, and how many the user answered: no query for a
    queue from `access_work_queue` (its `mine_done`), else one."""
    counts = queue_progress(queue)
    mine = getattr(queue, "mine_done", None)
    if mine is None:
        mine = Assignment.objects.filter(
            queue=queue, user=user, status=Assignment.Status.SUBMITTED
        ).count()
    return {
        "complete": counts["complete"],
        "total": counts["open"] + counts["complete"],
        "mine": mine,
    }


def _messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        return [m for m in prompt if isinstance(m, dict)]
    return []


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """Word-level diff as (op, text) runs, op in equal / del / ins. Whitespace is kept with
    the words so the runs concatenate back to `before` (equal + del) and `after` (equal +
    ins)."""
    a, b = re.findall(r"\S+\s*", before), re.findall(r"\S+\s*", after)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(("ins", "".join(b[j1:j2])))
    return runs


def is_blind_comparison(questions: list[Question]) -> bool:
    """Does the queue ask annotators to pick between left and right? Then the user's own
    preference must not be shown: it would decide the answer for them."""
    return any(
        q.type == Question.Type.CHOICE and {"left", "right"} <= set(q.choices) for q in questions
    )


def item_display(
    item: Item, presentation: dict | None = None, *, blind: bool = False
) -> dict[str, Any]:
    """What an annotator sees of an item: prompt, responses in the recorded order, the
    edit as a diff, and the claim under review. Never other annotators' answers.

    Expects `label` and `generation` (with `label__generation`) to be select_related.
    """
    presentation = presentation or {}
    responses: list[str] = []
    diff = None
    claim = None
    label = item.label if item.label_id is not None else None  # no query: select_related
    generation = item.generation if item.generation_id is not None else None
    if label is not None:
        prompt = label.prompt
        if label.kind == Label.Kind.PREFERENCE_PAIR:
            responses = [label.chosen, label.rejected]
            if label.source == Label.Source.EDIT:
                diff = word_diff(label.rejected, label.chosen)
            claim = "preferred"
        elif label.kind == Label.Kind.COMPLETION:
            responses = [label.completion]
            claim = "good answer" if label.label else "bad answer"
        else:
            responses = [label.generation.output]
            claim = (
                "the user regenerated this answer again and again: it failed them"
                if label.kind == Label.Kind.HIGH_RETRY
                else "rated"
            )
    elif generation is not None:
        prompt = generation.input
        responses = [generation.output]
    else:
        prompt = item.content.get("prompt", "")
        responses = [str(r) for r in item.content.get("responses", [])]

    order = presentation.get("order")
    shown = [responses[i] for i in order] if order and len(order) == len(responses) else responses
    sides = ["left", "right"] if len(shown) == 2 else ["response"] * len(shown)
    display_responses = [
        {"side": side, "text": text} for side, text in zip(sides, shown, strict=True)
    ]
    if blind:
        claim = None
    elif claim == "preferred":
        chosen_side = sides[order.index(0)] if order else sides[0]
        claim = f"the {chosen_side} answer is better (the user preferred it)"
    return {
        "id": item.pk,
        "reason": item.reason,
        "reason_text": REASON_TEXT.get(item.reason, item.reason),
        "prompt": _messages(prompt),
        "responses": display_responses,
        "diff": diff,
        "claim": claim,
        "detail": item.reason_detail,
    }


def assignment_for_display(assignment: Assignment) -> Assignment:
    """Reload the claimed item with what `item_display` reads, in one query (none if the
    claim came with it, as `claims.item_claim_next` selects it)."""
    if Assignment.item.is_cached(assignment) and _display_ready(assignment.item):
        return assignment
    assignment.item = Item.objects.select_related("label", "label__generation", "generation").get(
        pk=assignment.item_id
    )
    return assignment


def _display_ready(item: Item) -> bool:
    if not (Item.label.is_cached(item) and Item.generation.is_cached(item)):
        return False
    return item.label is None or Label.generation.is_cached(item.label)


def latest_agreement(queue: Queue) -> AgreementSnapshot | None:
    return queue.snapshots.order_by("-computed_at").first()


def agreement_summary(snapshot: AgreementSnapshot | None) -> dict[str, Any]:
    """The queue's agreement as the API shows it: per question alpha (or why it is
    undefined) and the gate's tally; empty until the first recomputation."""
    if snapshot is None:
        return {}
    return {
        key: {
            "alpha": q["alpha"],
            "level": q["level"],
            "items": q["items"],
            "undefined_reason": q["undefined_reason"],
        }
        for key, q in snapshot.results.get("questions", {}).items()
    }


def disputed_items(queue: Queue, limit: int = 100) -> list[Item]:
    """Disputed items without a decision yet, each with all its annotations (two queries)."""
    return list(
        queue.items.filter(agreement_state=Item.AgreementState.DISPUTED, adjudication__isnull=True)
        .exclude(status=Item.Status.DISCARDED)
        .select_related("label", "label__generation", "generation")
        .prefetch_related(
            Prefetch(
                "annotations", queryset=Annotation.objects.select_related("user").order_by("id")
            )
        )
        .order_by("-priority", "id")[:limit]
    )


# The lead's pages -------------------------------------------------------------------------


@dataclass
class AnnotatorStats:
    username: str
    annotations: int = 0
    skips: int = 0
    last_day: int = 0
    last_week: int = 0
    median_seconds: float | None = None


@dataclass
class QueueOverview:
    statuses: list[tuple[str, int]]
    items_total: int
    annotators: list[AnnotatorStats]
    pace: dict[str, int]


class Median(Aggregate):
    """The median, computed by PostgreSQL (`percentile_cont`)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _median_seconds(annotations: QuerySet[Annotation]) -> dict[int, float]:
    """Median seconds per item, per annotator. PostgreSQL computes it; SQLite (the embedded
    mode, small data) has no percentile function, so there the column is read once."""
    timed = annotations.filter(seconds_spent__isnull=False).order_by()
    if connection.vendor == "postgresql":
        return dict(
            timed.values("user_id").annotate(m=Median("seconds_spent")).values_list("user_id", "m")
        )
    seconds: dict[int, list[float]] = {}
    for user_id, spent in timed.values_list("user_id", "seconds_spent"):
        if spent is not None:  # filtered above; the type cannot know
            seconds.setdefault(user_id, []).append(spent)
    return {user_id: statistics.median(spent) for user_id, spent in seconds.items()}


def queue_overview(queue: Queue, *, now: datetime) -> QueueOverview:
    """Status counts, per-annotator counts, median seconds and pace: a fixed number of
    queries, with aggregation in the database."""
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    annotations = Annotation.objects.filter(queue=queue)
    stats: dict[int, AnnotatorStats] = {
        pk: AnnotatorStats(username=name)
        for pk, name in queue.members.order_by().values_list("pk", "username")
    }
    for row in (
        annotations.order_by()
        .values("user_id", "user__username")
        .annotate(
            n=Count("pk"),
            last_day=Count("pk", filter=Q(created_at__gte=day)),
            last_week=Count("pk", filter=Q(created_at__gte=week)),
        )
    ):
        entry = stats.setdefault(row["user_id"], AnnotatorStats(username=row["user__username"]))
        entry.annotations, entry.last_day, entry.last_week = (
            row["n"],
            row["last_day"],
            row["last_week"],
        )
    for skipped in (
        Assignment.objects.filter(queue=queue, status=Assignment.Status.SKIPPED)
        .order_by()
        .values("user_id", "user__username")
        .annotate(n=Count("pk"))
    ):
        entry = stats.setdefault(
            skipped["user_id"], AnnotatorStats(username=skipped["user__username"])
        )
        entry.skips = row["n"]
    for user_id, median in _median_seconds(annotations).items():
        stats[user_id].median_seconds = median
    progress = queue_progress(queue)
    in_progress = Assignment.objects.filter(
        queue=queue, status=Assignment.Status.CLAIMED, expires_at__gt=now
    ).count()
    annotators = sorted(stats.values(), key=lambda s: (-s.annotations, s.username))
    return QueueOverview(
        statuses=[
            ("Open", progress["open"]),
            ("Being answered now", in_progress),
            ("Complete", progress["complete"]),
            ("Discarded", progress["discarded"]),
        ],
        items_total=progress["open"] + progress["complete"] + progress["discarded"],
        annotators=annotators,
        pace={
            "last_day": sum(s.last_day for s in annotators),
            "last_week": sum(s.last_week for s in annotators),
        },
    )


def queues_with_stale_agreement(*, answered_before: datetime) -> list[int]:
    """Ids of queues with an annotation given or changed since their latest agreement
    snapshot (or with annotations and no snapshot), or an exclusion made or revoked since,
    counting only what happened before `answered_before`: later ones are still the
    debounced schedule's to handle."""
    latest = (
        AgreementSnapshot.objects.filter(queue=OuterRef("pk"))
        .order_by("-computed_at")
        .values("computed_at")[:1]
    )
    answers = Annotation.objects.filter(queue=OuterRef("pk"), created_at__lt=answered_before)
    changed = Annotation.objects.filter(
        queue=OuterRef("pk"),
        updated_at__isnull=False,
        updated_at__lt=answered_before,
        updated_at__gt=OuterRef("computed_at"),
    )
    exclusions = AnnotatorExclusion.objects.filter(queue=OuterRef("pk")).filter(
        Q(created_at__gt=OuterRef("computed_at"), created_at__lt=answered_before)
        | Q(revoked_at__gt=OuterRef("computed_at"), revoked_at__lt=answered_before)
    )
    return list(
        Queue.objects.alias(computed_at=Subquery(latest))
        .alias(
            answered=Exists(answers),
            answered_since=Exists(answers.filter(created_at__gt=OuterRef("computed_at"))),
            changed_since=Exists(changed),
            excluded_since=Exists(exclusions),
        )
        .filter(
            Q(computed_at__isnull=True, answered=True)
            | Q(answered_since=True)
            | Q(changed_since=True)
            | Q(excluded_since=True)
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def recent_snapshots(queue: Queue, limit: int = 5) -> list[AgreementSnapshot]:
    """The latest few recomputations, newest first, without their (large) results."""
    return list(queue.snapshots.order_by("-computed_at").defer("results")[:limit])


@dataclass(frozen=True)
class QuestionAlpha:
    key: str
    prompt: str
    level: str
    alpha: float | None
    items: int
    answers: int
    undefined_reason: str | None
    meets_minimum: bool


@dataclass(frozen=True)
class SeriesPoint:
    at: datetime
    alpha: float | None
    items: int


@dataclass(frozen=True)
class AnnotatorQuality:
    username: str
    annotations: int
    majority_agreement: float | None
    gold_items: int
    gold_accuracy: float | None
    alpha_without: float | None
    alpha_change: float | None  # alpha without them minus the queue's alpha
    flagged: bool
    excluded: bool = False  # a lead excluded their answers (review/exclusions.py)


@dataclass
class AgreementReport:
    snapshot: AgreementSnapshot
    questions: list[QuestionAlpha]
    series: dict[str, list[SeriesPoint]]
    annotators: list[AnnotatorQuality]
    annotator_question: QuestionAlpha | None  # what the annotator figures are measured on
    states: list[tuple[str, int]] = field(default_factory=list)
    decisions: list[tuple[str, int]] = field(default_factory=list)


GATE_STATES = [
    (Item.AgreementState.PENDING, "Pending (needs more annotations)"),
    (Item.AgreementState.AGREED, "Agreed"),
    (Item.AgreementState.DISPUTED, "Disputed"),
]
GATE_DECISIONS = [
    (Item.Decision.ACCEPTED, "Accepted"),
    (Item.Decision.REJECTED, "Rejected"),
    (Item.Decision.EXCLUDED, "Excluded"),
]


def agreement_report(queue: Queue, snapshot: AgreementSnapshot) -> AgreementReport:
    """A snapshot's results, joined to the queue's questions (one query) and shaped for the
    lead's agreement page. Never recomputes: the figures are as of `snapshot.computed_at`.

    Annotator figures are measured on the first gated choice question, as the gate does.
    """
    questions = list(queue.questions.all())
    prompts = {q.key: q.prompt for q in questions}
    results = snapshot.results or {}
    rows = [
        QuestionAlpha(
            key=key,
            prompt=prompts.get(key, key),
            level=q.get("level", ""),
            alpha=q.get("alpha"),
            items=q.get("items", 0),
            answers=q.get("answers", 0),
            undefined_reason=q.get("undefined_reason"),
            meets_minimum=q.get("alpha") is not None and q["alpha"] >= queue.min_alpha,
        )
        for key, q in results.get("questions", {}).items()
    ]
    by_key = {row.key: row for row in rows}
    decision_key = results.get("deciding_question")  # as the gate saw the queue then
    measured_on = by_key.get(decision_key) if decision_key else None
    base_alpha = measured_on.alpha if measured_on else None
    annotators = [
        AnnotatorQuality(
            username=username,
            annotations=a.get("annotations", 0),
            majority_agreement=a.get("majority_agreement"),
            gold_items=a.get("gold_items", 0),
            gold_accuracy=a.get("gold_accuracy"),
            alpha_without=a.get("alpha_without"),
            alpha_change=(
                round(a["alpha_without"] - base_alpha, 4)
                if a.get("alpha_without") is not None and base_alpha is not None
                else None
            ),
            flagged=bool(a.get("flagged")),
            excluded=bool(a.get("excluded")),
        )
        for username, a in results.get("annotators", {}).items()
    ]
    annotators.sort(key=lambda a: (not a.flagged, -a.annotations, a.username))
    series = {
        key: [
            SeriesPoint(
                at=datetime.fromisoformat(p["at"]), alpha=p.get("alpha"), items=p.get("items", 0)
            )
            for p in points
        ]
        for key, points in results.get("series", {}).items()
    }
    tally = results.get("items", {})
    return AgreementReport(
        snapshot=snapshot,
        questions=rows,
        series=series,
        annotators=annotators,
        annotator_question=measured_on,
        states=[(label, tally.get(str(state), 0)) for state, label in GATE_STATES],
        decisions=[(label, tally.get(f"decision_{d}", 0)) for d, label in GATE_DECISIONS],
    )


def _undecided_disputes() -> Q:
    return Q(agreement_state=Item.AgreementState.DISPUTED, adjudication__isnull=True) & ~Q(
        status=Item.Status.DISCARDED
    )


def lead_item_counts(queue: Queue) -> dict[str, int]:
    """Items, gold items, held-out items, disputes waiting for a lead and items with an
    open flag (one query)."""
    open_flag = ItemFlag.objects.filter(item=OuterRef("pk"), resolved_at__isnull=True)
    return queue.items.aggregate(
        total=Count("pk"),
        gold=Count("pk", filter=Q(gold_answers__isnull=False)),
        held_out=Count("pk", filter=Q(held_out=True)),
        disputed=Count("pk", filter=_undecided_disputes()),
        flagged=Count("pk", filter=Q(Exists(open_flag))),
    )


LEAD_ITEM_FILTERS: dict[str, tuple[str, Q]] = {
    "all": ("All items", Q()),
    "disputed": ("Disputed, undecided", _undecided_disputes()),
    "agreed": ("Agreed", Q(agreement_state=Item.AgreementState.AGREED)),
    "pending": ("Pending", Q(agreement_state=Item.AgreementState.PENDING)),
    "gold": ("Gold", Q(gold_answers__isnull=False)),
    "held_out": ("Held out", Q(held_out=True)),
    "not_held_out": ("Not held out", Q(held_out=False)),
}


LEAD_ITEM_VERDICTS: dict[str, tuple[str, Q]] = {
    "pending": ("Pending", Q(agreement_state=Item.AgreementState.PENDING)),
    "agreed": ("Agreed", Q(agreement_state=Item.AgreementState.AGREED)),
    "disputed": ("Disputed", Q(agreement_state=Item.AgreementState.DISPUTED)),
    "accepted": ("Accepted", Q(decision=Item.Decision.ACCEPTED)),
    "rejected": ("Rejected", Q(decision=Item.Decision.REJECTED)),
    "excluded": ("Excluded", Q(decision=Item.Decision.EXCLUDED)),
    "undecided": ("No decision yet", Q(decision="")),
}
LEAD_ITEM_FLAGGED = {
    "open": "With an open flag",
    "any": "Ever flagged",
    "none": "Without an open flag",
}


@dataclass(frozen=True)
class ItemFilters:
    """The lead's filters of a queue's items; blank fields filter nothing. `annotator` is
    the id of a user (`queue_annotator` checks the name)."""

    show: str = "all"
    text: str = ""
    status: str = ""
    verdict: str = ""
    flagged: str = ""
    annotator: int | None = None


def _open_flags() -> QuerySet[ItemFlag]:
    return ItemFlag.objects.filter(item=OuterRef("pk"), resolved_at__isnull=True)


def _text_match(text: str) -> Q:
    """Items whose prompt or responses contain `text` (any case): free content's, or the
    label's or generation's the item shows. A LIKE over the queue's items: the list is
    paginated, so one page of matches is read (and the matches counted once).

    JSON values (a list of messages, of responses) are matched as their JSON text, which
    SQLite stores with non-ASCII letters escaped ("\\u00e9"): their escaped form is
    matched too."""
    variants = {text, json.dumps(text)[1:-1]}
    match = Q(label__chosen__icontains=text)
    for name in ("label__rejected", "label__completion", "label__generation__output"):
        match |= Q(**{f"{name}__icontains": text})
    match |= Q(generation__output__icontains=text)
    for variant in variants:
        for name in (
            "content__prompt",
            "content__responses",
            "label__prompt",
            "generation__input",
        ):
            match |= Q(**{f"{name}__icontains": variant})
    return match


def lead_items(queue: Queue, filters: ItemFilters | None = None) -> QuerySet[Item]:
    """The queue's items for the lead's item list, filtered, with what `item_display` reads
    and `has_open_flag` (in the same query)."""
    filters = filters or ItemFilters()
    _, condition = LEAD_ITEM_FILTERS.get(filters.show, LEAD_ITEM_FILTERS["all"])
    items = queue.items.filter(condition)
    if filters.text:
        items = items.filter(_text_match(filters.text))
    if filters.status:
        items = items.filter(status=filters.status)
    if filters.verdict in LEAD_ITEM_VERDICTS:
        items = items.filter(LEAD_ITEM_VERDICTS[filters.verdict][1])
    if filters.flagged == "open":
        items = items.filter(Exists(_open_flags()))
    elif filters.flagged == "any":
        items = items.filter(Exists(ItemFlag.objects.filter(item=OuterRef("pk"))))
    elif filters.flagged == "none":
        items = items.exclude(Exists(_open_flags()))
    if filters.annotator is not None:
        answered = Annotation.objects.filter(item=OuterRef("pk"), user_id=filters.annotator)
        items = items.filter(Exists(answered))
    return (
        items.annotate(has_open_flag=Exists(_open_flags()))
        .select_related("label", "label__generation", "generation")
        .order_by("id")
    )


def queue_annotator(queue: Queue, username: str) -> int | None:
    """The id of the user named `username` if they are a member of the queue or answered
    one of its items; else None (one query). Names of other projects' people stay unknown."""
    answered = Annotation.objects.filter(queue=queue, user_id=OuterRef("pk"))
    member = Queue.members.through.objects.filter(queue_id=queue.pk, user_id=OuterRef("pk"))
    return (
        User.objects.filter(username=username)
        .filter(Q(Exists(member)) | Q(Exists(answered)))
        .values_list("pk", flat=True)
        .first()
    )


def queue_annotator_names(queue: Queue) -> list[str]:
    """The queue's members' names, for the annotator filter's suggestions (one query)."""
    return list(queue.members.order_by("username").values_list("username", flat=True))


def open_flag_counts() -> Subquery:
    """How many open flags the outer queue has (a subquery, on the open-flags index)."""
    return Subquery(
        ItemFlag.objects.filter(queue=OuterRef("pk"), resolved_at__isnull=True)
        .order_by()
        .values("queue")
        .annotate(n=Count("pk"))
        .values("n"),
        output_field=IntegerField(),
    )


def open_flags(queue: Queue) -> QuerySet[ItemFlag]:
    """The queue's open flags, newest first, with their items (as `item_display` reads
    them) and their authors: one query a page."""
    return (
        ItemFlag.objects.filter(queue=queue, resolved_at__isnull=True)
        .select_related(
            "user", "item", "item__label", "item__label__generation", "item__generation"
        )
        .order_by("-created_at", "-id")
    )


def access_open_flag(queue: Queue, flag_id: int) -> ItemFlag:
    """One flag of the queue (open or resolved); else Http404."""
    if not 1 <= flag_id <= ID_MAX:
        raise Http404("No such flag.")
    flag = ItemFlag.objects.filter(queue=queue, pk=flag_id).first()
    if flag is None:
        raise Http404("No such flag.")
    return flag


def skipped_with_reasons(queue: Queue) -> QuerySet[Assignment]:
    """The queue's skips, newest claims first, with who skipped and the item (as
    `item_display` reads it): one query a page."""
    return (
        Assignment.objects.filter(queue=queue, status=Assignment.Status.SKIPPED)
        .select_related(
            "user", "item", "item__label", "item__label__generation", "item__generation"
        )
        .order_by("-claimed_at", "-id")
    )


def item_for_lead(queue: Queue, item_id: int) -> Item:
    """One item of the queue with everything the lead's item page shows: its content, its
    annotations with their authors, flags with their authors, skips and adjudication (a
    fixed number of queries); else Http404."""
    if not 1 <= item_id <= ID_MAX:
        raise Http404("No such item.")
    item = (
        Item.objects.filter(queue=queue, pk=item_id)
        .select_related("label", "label__generation", "generation", "adjudication", "reopened_by")
        .prefetch_related(
            Prefetch(
                "annotations", queryset=Annotation.objects.select_related("user").order_by("id")
            ),
            Prefetch(
                "flags",
                queryset=ItemFlag.objects.select_related("user", "resolved_by").order_by("id"),
            ),
            Prefetch(
                "assignments",
                queryset=Assignment.objects.filter(status=Assignment.Status.SKIPPED)
                .select_related("user")
                .order_by("id"),
                to_attr="skips",
            ),
        )
        .first()
    )
    if item is None:
        raise Http404("No such item.")
    return item


# The gate's reasons, as the lead pages show them: the gate writes short technical phrases
# (review/gate.py, `item_verdict` and `queue_verdict`); these say the same in sentences.
_REASON_STARTS = [
    ("queue alpha below ", "The queue's agreement (alpha) is below its minimum of "),
    ("queue alpha unknown: ", "The queue's agreement (alpha) cannot be measured yet: "),
    ("too few ", "Too few "),
    ("reviewers agreed: ", "Reviewers agreed: "),
    ("reviewers agreed on ", "Reviewers agreed on "),
    ("reviewers preferred ", "Reviewers preferred "),
    ("reviewers agreed", "Reviewers agreed"),
    ("adjudicated: ", "Decided by a lead: "),
]
_REASON_WHOLE = {
    "needs more annotations": "Waiting for more annotations.",
    "disputed: for a lead": "Annotators disagree: waiting for a lead's decision.",
    "item discarded": "The item was discarded.",
}


def decision_reason_text(reason: str) -> str:
    """The gate's stored reason for an item's verdict as a sentence (blank stays blank)."""
    reason = reason.strip()
    if not reason:
        return ""
    if reason in _REASON_WHOLE:
        return _REASON_WHOLE[reason]
    parts = []
    for part in reason.split("; "):
        for start, words in _REASON_STARTS:
            if part.startswith(start):
                part = words + part.removeprefix(start)
                break
        else:
            part = part[:1].upper() + part[1:]
        parts.append(part.replace("_", " "))
    text = "; ".join(parts)
    return text if text.endswith((".", ")")) else text + "."
