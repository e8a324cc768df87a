"""The annotator's pages: my queues, the work page (claim, answer, skip); and the lead's:
overview, agreement (with its charts), disputed items to adjudicate, and the item list
where items are marked gold or held out. Same rules as `review/api.py`: `selectors.access_*`
decide who may see what and answer 404 otherwise; `claims` and `services` do every write.

With htmx (`request.htmx`) submit and skip answer with the next item's partial; without
JavaScript they redirect to the work page (post/redirect/get).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from feedback.storable import ID_MAX
from review import claims, selectors, services
from review.agreement import LEFT_RIGHT, domain_of, gated
from review.answers import MAX_SECONDS_SPENT, AnswersInvalid
from review.charts import alpha_chart, annotator_chart
from review.models import (
    MAX_RATING_POINTS,
    Adjudication,
    Annotation,
    Assignment,
    Item,
    Question,
    Queue,
)
from review.templatetags.review_text import message_text

# Number keys pick options; more options than this get no key (and ratings a select).
MAX_KEYED_OPTIONS = 9


@login_required
@require_GET
def queue_list(request: HttpRequest) -> HttpResponse:
    queues = selectors.queues_with_progress(request.user)
    led = selectors.led_project_ids(request.user)
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
    overview = selectors.queue_overview(queue, now=timezone.now())
    return render(
        request,
        "review/overview.html",
        {"queue": queue, "overview": overview, "lead_page": "overview"},
    )


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
    busy = False
    if assignment is None:
        try:
            assignment = claims.item_claim_next(queue=queue, user=request.user)
        except claims.ClaimBusy:
            busy = True
    item = None
    fields: list[QuestionField] = []
    if assignment is not None:
        if assignment.pk is not None:
            assignment = selectors.assignment_for_display(assignment)
        questions = list(queue.questions.all())
        item = selectors.item_display(
            assignment.item,
            assignment.presentation,
            blind=selectors.is_blind_comparison(questions),
        )
        fields = _question_fields(questions, answers or {}, errors or {})
    known = {f.question.key for f in fields}
    context = {
        "queue": queue,
        "item": item,
        "fields": fields,
        "general_errors": [msg for key, msg in (errors or {}).items() if key not in known],
        "progress": selectors.annotator_progress(queue, request.user),
        "busy": busy,
    }
    template = "review/work.html#work" if request.htmx else "review/work.html"
    if busy and not request.htmx:  # htmx swaps only 2xx in: there the notice is the answer
        response = render(request, template, context, status=503)
        response["Retry-After"] = str(claims.CLAIM_RETRY_AFTER_SECONDS)
        return response
    return render(request, template, context, status=status)


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
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS_SPENT:
        return None  # the page's timing is best effort: a bad figure is dropped, not refused
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
    if low is None or high is None or high < low or high - low >= MAX_RATING_POINTS:
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


# The lead's pages -------------------------------------------------------------------------
# Every lead page and form goes through `access_queue(..., lead=True)`: 404 for anyone who
# does not lead the queue's project, annotators included (they must never see each other's
# answers).

DISPUTED_PAGE_SIZE = 100
ITEMS_PAGE_SIZE = 50


@login_required
@require_GET
def queue_agreement(request: HttpRequest, queue_id: int) -> HttpResponse:
    """The latest snapshot's figures: never recomputed on a page view."""
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    snapshot = selectors.latest_agreement(queue)
    report = selectors.agreement_report(queue, snapshot) if snapshot is not None else None
    context: dict[str, Any] = {
        "queue": queue,
        "report": report,
        "snapshots": selectors.recent_snapshots(queue),
        "lead_page": "agreement",
    }
    if report is not None:
        context["alpha_chart"] = alpha_chart(report, minimum=queue.min_alpha)
        context["annotator_chart"] = annotator_chart(
            report.annotators, minimum=queue.min_annotator_agreement
        )
    return render(request, "review/agreement.html", context)


@login_required
@require_POST
def agreement_recompute(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    if claims.agreement_schedule(queue.pk):
        messages.info(request, "Recomputation requested. The figures below change once it has run.")
    else:  # requested within the debounce window already, or Redis is unreachable
        messages.info(request, "A recomputation is due within a few minutes; no need to ask again.")
    return redirect("review:agreement", queue_id=queue.pk)


@login_required
@require_GET
def queue_disputed(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    return _render_disputed(request, queue)


@login_required
@require_POST
def item_adjudicate(request: HttpRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    item = selectors.access_item(queue, item_id)
    decision = request.POST.get("decision", "")
    note = request.POST.get("note", "")
    posted = {"decision": decision, "note": note}
    try:
        adjudication = services.item_adjudicate(
            item=item, lead=request.user, decision=decision, note=note
        )
    except ValueError as error:
        errors = dict([_field_error(error, "decision")])
        return _render_disputed(request, queue, item_id=item.pk, posted=posted, errors=errors)
    messages.success(
        request,
        f"Item {item.pk}: {adjudication.get_decision_display().lower()}. "
        "The gate applies it at the next recomputation.",
    )
    return redirect("review:disputed", queue_id=queue.pk)


@login_required
@require_GET
def queue_items(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    return _render_items(request, queue)


@login_required
@require_POST
def item_gold(request: HttpRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    item = selectors.access_item(queue, item_id)
    prefetch_related_objects([queue], "questions")
    item.queue = queue
    answers = _gold_from_post(list(queue.questions.all()), request.POST)
    try:
        services.item_set_gold(item=item, answers=answers)
    except AnswersInvalid as invalid:
        return _render_items(request, queue, gold_item=item.pk, gold_errors=invalid.errors)
    messages.success(request, f"Item {item.pk} is gold now.")
    return _redirect_to_items(request, queue)


@login_required
@require_POST
def items_hold_out(request: HttpRequest, queue_id: int) -> HttpResponse:
    """Hold out the checked items, or (when the form carries `share`) a random share."""
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    try:
        if "share" in request.POST:
            count = services.items_hold_out(queue=queue, share=_share(request.POST["share"]))
        else:
            count = services.items_hold_out(
                queue=queue, item_ids=_item_ids(request.POST.getlist("item_ids"))
            )
    except ValueError as error:
        default = "share" if "share" in request.POST else "item_ids"
        return _render_items(request, queue, held_out_errors=dict([_field_error(error, default)]))
    messages.success(request, f"Held out {count} item{pluralize(count)}.")
    return _redirect_to_items(request, queue)


def _field_error(error: ValueError, default: str) -> tuple[str, str]:
    """Services word their errors "field: message"; split that for the form."""
    name, sep, message = str(error).partition(": ")
    return (name, message) if sep and name.isidentifier() else (default, str(error))


def _share(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("share: must be a number above 0 and at most 1.") from None


def _item_ids(raw: list[str]) -> list[int]:
    if not raw:
        raise ValueError("item_ids: check at least one item.")
    try:
        ids = [int(value) for value in raw]
    except ValueError:
        raise ValueError("item_ids: must be item numbers.") from None
    if not all(1 <= n <= ID_MAX for n in ids):
        raise ValueError("item_ids: must be item numbers.")
    return ids


def _gold_from_post(questions: list[Question], post: QueryDict) -> dict[str, Any]:
    """Known answers from `gold-<key>` fields, blanks left out. Values are matched back to
    the question's domain so ratings compare as numbers; unknown keys are passed on for
    the service to name."""
    by_key = {q.key: q for q in questions}
    answers: dict[str, Any] = {}
    for name, raw in post.items():
        if not name.startswith("gold-") or not raw.strip():
            continue
        key, value = name.removeprefix("gold-"), raw.strip()
        question = by_key.get(key)
        if question is not None:
            value = next((v for v in domain_of(question) if str(v) == value), value)
        answers[key] = value
    return answers


# The disputed page --------------------------------------------------------------------------


@dataclass
class AnswerCell:
    value: str
    given: str = ""  # the answer as given, where the side the annotator saw renames it


@dataclass
class AnnotationRow:
    username: str
    cells: list[AnswerCell]
    seconds: float | None
    created_at: datetime


@dataclass
class DisputedRow:
    item: Item
    display: dict[str, Any]
    annotations: list[AnnotationRow]
    decision: str = ""
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _render_disputed(
    request: HttpRequest,
    queue: Queue,
    *,
    item_id: int | None = None,
    posted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HttpResponse:
    """The disputed page; with `errors`, a 400 showing them on `item_id`'s form."""
    questions = list(queue.questions.all())
    rows = []
    for item in selectors.disputed_items(queue, limit=DISPUTED_PAGE_SIZE):
        row = DisputedRow(
            item=item,
            display=_lead_display(item),
            annotations=[_annotation_row(a, questions) for a in item.annotations.all()],
        )
        if item.pk == item_id and posted is not None:
            row.decision, row.note, row.errors = posted["decision"], posted["note"], errors or {}
        rows.append(row)
    context = {
        "queue": queue,
        "rows": rows,
        "questions": questions,
        "decisions": Adjudication.Decision.choices,
        "counts": selectors.lead_item_counts(queue),
        "error_item": item_id if errors else None,
        "errors": errors or {},
        "lead_page": "disputed",
    }
    return render(request, "review/disputed.html", context, status=400 if errors else 200)


def _lead_display(item: Item) -> dict[str, Any]:
    """`item_display` in the stored order, with the responses named the way annotations'
    canonical values name them (chosen / rejected, response 1 / 2), not left / right."""
    display = selectors.item_display(item)
    responses = display["responses"]
    if len(responses) == 2:
        is_pair = item.label_id is not None and item.label.kind == "preference_pair"
        names = ["Chosen by the user", "Rejected"] if is_pair else ["Response 1", "Response 2"]
        for response, name in zip(responses, names, strict=True):
            response["side"] = name
        if is_pair:
            display["claim"] = "the answer the user chose is better"
    return display


def _annotation_row(annotation: Annotation, questions: list[Question]) -> AnnotationRow:
    cells = []
    for question in questions:
        value = annotation.values.get(question.key, annotation.answers.get(question.key))
        given = annotation.answers.get(question.key)
        cells.append(
            AnswerCell(
                value="" if value is None else str(value).replace("_", " "),
                given=str(given) if given is not None and given != value else "",
            )
        )
    return AnnotationRow(
        username=annotation.user.get_username(),
        cells=cells,
        seconds=annotation.seconds_spent,
        created_at=annotation.created_at,
    )


# The items page: gold and held out ----------------------------------------------------------


@dataclass
class GoldField:
    question: Question
    name: str
    id: str
    options: list[Option]
    error: str = ""


@dataclass
class ItemRow:
    item: Item
    summary: str
    gold: list[GoldField]
    errors: dict[str, str] = field(default_factory=dict)


def _items_query(request: HttpRequest) -> dict[str, str]:
    """The list's filter and page, as given in the query string (forms post back to it)."""
    query = {}
    show = request.GET.get("show", "all")
    if show in selectors.LEAD_ITEM_FILTERS and show != "all":
        query["show"] = show
    page = request.GET.get("page", "")
    if page.isdigit() and page != "1":
        query["page"] = page
    return query


def _redirect_to_items(request: HttpRequest, queue: Queue) -> HttpResponse:
    query = urlencode(_items_query(request))
    return redirect(reverse("review:items", args=[queue.pk]) + (f"?{query}" if query else ""))


def _render_items(
    request: HttpRequest,
    queue: Queue,
    *,
    gold_item: int | None = None,
    gold_errors: dict[str, str] | None = None,
    held_out_errors: dict[str, str] | None = None,
) -> HttpResponse:
    """The item list; with errors (of `gold_item`'s gold form or of the held-out forms), a
    400 showing them beside the form they belong to."""
    query = _items_query(request)
    show = query.get("show", "all")
    page = Paginator(selectors.lead_items(queue, show), ITEMS_PAGE_SIZE).get_page(
        query.get("page", 1)
    )
    gate_questions = gated(queue.questions.all())
    rows = []
    for item in page.object_list:
        errors, shown = {}, item.gold_answers or {}
        if item.pk == gold_item:  # a rejected form: show what was posted, with the errors
            errors = gold_errors or {}
            shown = {q.key: request.POST.get(f"gold-{q.key}") for q in gate_questions}
        rows.append(
            ItemRow(
                item=item,
                summary=_summary(item),
                gold=[_gold_field(q, item, shown.get(q.key), errors) for q in gate_questions],
                errors=errors,
            )
        )
    errors = gold_errors or held_out_errors or {}
    context = {
        "queue": queue,
        "page": page,
        "rows": rows,
        "counts": selectors.lead_item_counts(queue),
        "filters": [(key, label) for key, (label, _) in selectors.LEAD_ITEM_FILTERS.items()],
        "show": show,
        "query": urlencode(query),
        "page_query": urlencode({k: v for k, v in query.items() if k != "page"}),
        "gold_item": gold_item,
        "errors": errors,
        "held_out_errors": held_out_errors or {},
        "lead_page": "items",
    }
    return render(request, "review/items.html", context, status=400 if errors else 200)


def _summary(item: Item) -> str:
    """The item's last user message (or first message) as one line of plain text."""
    prompt = selectors.item_display(item)["prompt"]
    users = [m for m in prompt if m.get("role") == "user"] or prompt
    return " ".join(message_text(users[-1].get("content")).split()) if users else ""


def _gold_field(question: Question, item: Item, current: Any, errors: dict[str, str]) -> GoldField:
    base = f"gold-{item.pk}-{question.key}"
    chosen = "" if current is None else str(current)
    return GoldField(
        question=question,
        name=f"gold-{question.key}",
        id=base,
        options=[
            Option(
                value=str(v),
                label=str(v).replace("_", " "),
                id=f"{base}-{n}",
                checked=str(v) == chosen,
            )
            for n, v in enumerate(_gold_choices(question, item))
        ],
        error=errors.get(question.key, ""),
    )


def _gold_choices(question: Question, item: Item) -> list[Any]:
    """The values a gold answer can take for this item: as annotations store them, so
    left / right become chosen / rejected (derived pairs) or response 1 / 2 (free pairs)."""
    domain = domain_of(question)
    if question.type != Question.Type.CHOICE or not any(c in LEFT_RIGHT for c in question.choices):
        return domain
    responses = item.content.get("responses") if isinstance(item.content, dict) else None
    if item.label_id is not None and item.reason_detail.get("kind") == "preference_pair":
        drop = {*LEFT_RIGHT, "response_1", "response_2"}
    elif isinstance(responses, list) and len(responses) == 2:
        drop = {*LEFT_RIGHT, "chosen", "rejected"}
    else:
        drop = {"chosen", "rejected", "response_1", "response_2"}
    return [v for v in domain if v not in drop]
