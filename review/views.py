"""The annotator's pages: my queues, the work page (claim, answer, skip) and the lead's
overview. Same rules as `review/api.py`: `selectors.access_*` decide who may see what and
answer 404 otherwise; `claims` does every write.

With htmx (`request.htmx`) submit and skip answer with the next item's partial; without
JavaScript they redirect to the work page (post/redirect/get).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, prefetch_related_objects
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from feedback.models import Membership
from review import claims, selectors
from review.answers import AnswersInvalid
from review.models import Annotation, Assignment, Question, Queue

# Number keys pick options; more options than this get no key (and ratings a select).
MAX_KEYED_OPTIONS = 9


@login_required
@require_GET
def queue_list(request: HttpRequest) -> HttpResponse:
    queues = selectors.queues_with_progress(request.user)
    led = _led_project_ids(request.user)
    for queue in queues:
        queue.is_led = led is None or queue.project_id in led
    return render(request, "review/queue_list.html", {"queues": queues})


@never_cache  # Back must show the current claim, not a stale copy of an answered item.
@login_required
@require_GET
def work(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id)
    return _render_work(request, queue)


@login_required
@require_POST
def item_submit(request: HttpRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id)
    item = selectors.access_item(queue, item_id)
    # One read of the questions serves parsing, validation (annotation_submit reads
    # item.queue.questions) and the page that follows.
    prefetch_related_objects([queue], "questions")
    item.queue = queue
    questions = list(queue.questions.all())
    answers = _answers_from_post(questions, request.POST)
    try:
        claims.annotation_submit(
            item=item,
            user=request.user,
            answers=answers,
            seconds_spent=_seconds(request.POST.get("seconds_spent")),
        )
    except AnswersInvalid as invalid:
        mine = Assignment.objects.filter(item=item, user=request.user).first()
        return _render_work(
            request,
            queue,
            assignment=mine or Assignment(item=item, queue=queue, user=request.user),
            answers=answers,
            errors=invalid.errors,
            status=400,
        )
    except claims.ReviewConflict as conflict:
        messages.warning(request, f"{conflict} Here is the next item.")
    else:
        messages.success(request, f"Saved your answers to item {item.pk}.")
    return _next_item(request, queue)


@login_required
@require_POST
def item_skip(request: HttpRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id)
    item = selectors.access_item(queue, item_id)
    try:
        claims.item_skip(item=item, user=request.user)
    except claims.ReviewConflict as conflict:
        messages.warning(request, f"{conflict} Here is the next item.")
    else:
        messages.info(request, f"Skipped item {item.pk}.")
    return _next_item(request, queue)


@login_required
@require_GET
def queue_overview(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    return render(request, "review/overview.html", _overview(queue, now=timezone.now()))


# Page assembly --------------------------------------------------------------------------


def _next_item(request: HttpRequest, queue: Queue) -> HttpResponse:
    if request.htmx:
        return _render_work(request, queue)
    return redirect("review:work", queue_id=queue.pk)


def _render_work(
    request: HttpRequest,
    queue: Queue,
    *,
    assignment: Assignment | None = None,
    answers: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The work page (or, for htmx, its work area) showing `assignment`'s item, else the
    user's next claim (resumed or new), else the "queue done" state."""
    if assignment is None:
        assignment = claims.item_claim_next(queue=queue, user=request.user)
    item = None
    fields: list[QuestionField] = []
    if assignment is not None:
        if assignment.pk is not None:
            assignment = selectors.assignment_for_display(assignment)
        item = selectors.item_display(assignment.item, assignment.presentation)
        fields = _question_fields(list(queue.questions.all()), answers or {}, errors or {})
    known = {f.question.key for f in fields}
    context = {
        "queue": queue,
        "item": item,
        "fields": fields,
        "general_errors": [msg for key, msg in (errors or {}).items() if key not in known],
        "progress": _progress(queue, request.user),
    }
    template = "review/work.html#work" if request.htmx else "review/work.html"
    return render(request, template, context, status=status)


def _progress(queue: Queue, user: AbstractBaseUser) -> dict[str, int]:
    counts = selectors.queue_progress(queue)
    return {
        "complete": counts["complete"],
        "total": counts["open"] + counts["complete"],
        "mine": Assignment.objects.filter(
            queue=queue, user=user, status=Assignment.Status.SUBMITTED
        ).count(),
    }


def _led_project_ids(user: AbstractBaseUser) -> set[int] | None:
    """Projects the user leads; None means all (superuser)."""
    if user.is_superuser:
        return None
    return set(
        Membership.objects.filter(user=user, role__in=selectors.LEAD_ROLES).values_list(
            "project_id", flat=True
        )
    )


# The answer form --------------------------------------------------------------------------


@dataclass
class Option:
    value: str
    label: str
    id: str
    checked: bool
    key: str = ""  # the number key that picks it, if any


@dataclass
class QuestionField:
    question: Question
    widget: str  # radios, select, number or textarea
    name: str
    id: str
    value: str
    error: str
    options: list[Option] = field(default_factory=list)


def _field_name(question: Question) -> str:
    # Prefixed so that no question key can collide with csrfmiddlewaretoken or seconds_spent.
    return f"answer-{question.key}"


def _answers_from_post(questions: list[Question], post: QueryDict) -> dict[str, Any]:
    """The posted answers by question key, as strings; a choice is matched back to the
    option it names so non-string options compare equal. Validation is the service's."""
    answers: dict[str, Any] = {}
    for question in questions:
        raw = post.get(_field_name(question), "")
        value: Any = raw.strip() if question.type != Question.Type.TEXT else raw
        if question.type == Question.Type.CHOICE:
            value = next((c for c in question.choices if str(c) == value), value)
        answers[question.key] = value
    return answers


def _seconds(raw: str | None) -> float | None:
    try:
        seconds = float(raw or "")
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return round(seconds, 1)


def _question_fields(
    questions: list[Question], answers: dict[str, Any], errors: dict[str, str]
) -> list[QuestionField]:
    fields = []
    for question in questions:
        base = f"q-{question.key}"
        given = answers.get(question.key)
        value = "" if given is None else str(given)
        widget, options = "textarea", []
        if question.type == Question.Type.CHOICE:
            widget = "radios"
            choices = [str(c) for c in question.choices]
            options = [
                Option(
                    value=c,
                    label=c,
                    id=f"{base}-{n}",
                    checked=c == value,
                    key=str(n) if n <= MAX_KEYED_OPTIONS else "",
                )
                for n, c in enumerate(choices, start=1)
            ]
        elif question.type == Question.Type.RATING:
            widget, options = _rating_widget(question, base, value)
        fields.append(
            QuestionField(
                question=question,
                widget=widget,
                name=_field_name(question),
                id=base,
                value=value,
                error=errors.get(question.key, ""),
                options=options,
            )
        )
    return fields


def _rating_widget(question: Question, base: str, value: str) -> tuple[str, list[Option]]:
    low, high = question.min_value, question.max_value
    if low is None or high is None or high < low:
        return "number", []
    values = [str(v) for v in range(low, high + 1)]
    if len(values) > MAX_KEYED_OPTIONS + 1:
        return "select", [
            Option(value=v, label=v, id=f"{base}-{v}", checked=v == value) for v in values
        ]
    # A 0..9 scale is picked by its own digit; other short scales by position.
    by_digit = low >= 0 and high <= 9
    return "radios", [
        Option(
            value=v,
            label=v,
            id=f"{base}-{n}",
            checked=v == value,
            key=v if by_digit else (str(n) if n <= MAX_KEYED_OPTIONS else ""),
        )
        for n, v in enumerate(values, start=1)
    ]


# The lead's overview ----------------------------------------------------------------------


@dataclass
class AnnotatorStats:
    username: str
    annotations: int = 0
    skips: int = 0
    last_day: int = 0
    last_week: int = 0
    median_seconds: float | None = None


def _overview(queue: Queue, *, now: datetime) -> dict[str, Any]:
    """Status counts, per-annotator counts and pace: a fixed number of queries (the
    seconds are fetched as one column and their medians taken here, as SQLite has no
    percentile function)."""
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    annotations = Annotation.objects.filter(item__queue=queue)
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
    for row in (
        Assignment.objects.filter(queue=queue, status=Assignment.Status.SKIPPED)
        .order_by()
        .values("user_id", "user__username")
        .annotate(n=Count("pk"))
    ):
        entry = stats.setdefault(row["user_id"], AnnotatorStats(username=row["user__username"]))
        entry.skips = row["n"]
    seconds: dict[int, list[float]] = {}
    for user_id, spent in annotations.filter(seconds_spent__isnull=False).values_list(
        "user_id", "seconds_spent"
    ):
        seconds.setdefault(user_id, []).append(spent)
    for user_id, spent in seconds.items():
        stats[user_id].median_seconds = statistics.median(spent)
    progress = selectors.queue_progress(queue)
    in_progress = Assignment.objects.filter(
        queue=queue, status=Assignment.Status.CLAIMED, expires_at__gt=now
    ).count()
    annotators = sorted(stats.values(), key=lambda s: (-s.annotations, s.username))
    return {
        "queue": queue,
        "statuses": [
            ("Open", progress["open"]),
            ("Being answered now", in_progress),
            ("Complete", progress["complete"]),
            ("Discarded", progress["discarded"]),
        ],
        "items_total": progress["open"] + progress["complete"] + progress["discarded"],
        "annotators": annotators,
        "pace": {
            "last_day": sum(s.last_day for s in annotators),
            "last_week": sum(s.last_week for s in annotators),
        },
    }
