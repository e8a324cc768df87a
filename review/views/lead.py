"""The lead's pages: the projects they lead with their queues, and per queue: overview,
agreement (with its charts), disputed items to adjudicate, and the item list where items
are marked gold or held out.

Every lead page and form goes through `access_queue(..., lead=True)`: 404 for anyone who
does not lead the queue's project, annotators included (they must never see each other's
answers). `claims` and `services` do every write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch, prefetch_related_objects
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from core.typing import AuthedRequest
from feedback.models import Label
from review import claims, selectors, services
from review.agreement import gated
from review.answers import AnswersInvalid
from review.charts import alpha_chart, annotator_chart
from review.claims import ReviewConflict
from review.forms import (
    GoldField,
    ItemFilterForm,
    field_error,
    gold_field,
    gold_from_post,
    item_ids_from_post,
    share_from_post,
)
from review.history import adjudicated_at_of, reopen_item, verdict_is_final
from review.models import Adjudication, Annotation, Assignment, Item, ItemFlag, Question, Queue
from review.templatetags.review_text import message_text
from tenancy.access import projects_for_user

DISPUTED_PAGE_SIZE = 100
ITEMS_PAGE_SIZE = 50
FLAGS_PAGE_SIZE = 50


@login_required
@require_GET
def lead_home(request: AuthedRequest) -> HttpResponse:
    """The projects the user leads (or administers; all for a superuser), each with its
    queues (and their open flags) and the links to their lead pages and to the project's
    team page."""
    queues = Queue.objects.annotate(open_flags=Coalesce(selectors.open_flag_counts(), 0)).order_by(
        "name"
    )
    projects = projects_for_user(request.user, selectors.LEAD_ROLES).prefetch_related(
        Prefetch("queues", queryset=queues)
    )
    return render(request, "review/lead_home.html", {"projects": projects})


@login_required
@require_GET
def queue_overview(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    overview = selectors.queue_overview(queue, now=timezone.now())
    return render(
        request,
        "review/overview.html",
        {"queue": queue, "overview": overview, "lead_page": "overview"},
    )


@login_required
@require_GET
def queue_agreement(request: AuthedRequest, queue_id: int) -> HttpResponse:
    """The latest snapshot's figures: never recomputed on a page view."""
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    return agreement_page(request, queue)


def agreement_page(
    request: AuthedRequest, queue: Queue, *, status: int = 200, **extra: Any
) -> HttpResponse:
    """The agreement page of `queue` from its latest snapshot, with `extra` in the context
    (the exclusion forms' errors, review/views/exclusions.py)."""
    snapshot = selectors.latest_agreement(queue)
    report = selectors.agreement_report(queue, snapshot) if snapshot is not None else None
    context: dict[str, Any] = {
        "queue": queue,
        "report": report,
        "snapshots": selectors.recent_snapshots(queue),
        "lead_page": "agreement",
        **extra,
    }
    if report is not None:
        context["alpha_chart"] = alpha_chart(report, minimum=queue.min_alpha)
        context["annotator_chart"] = annotator_chart(
            report.annotators, minimum=queue.min_annotator_agreement
        )
    return render(request, "review/agreement.html", context, status=status)


@login_required
@require_POST
def agreement_recompute(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    if claims.agreement_schedule(queue.pk):
        messages.info(request, "Recomputation requested. The figures below change once it has run.")
    else:  # requested within the debounce window already, or Redis is unreachable
        messages.info(request, "A recomputation is due within a few minutes; no need to ask again.")
    return redirect("review:agreement", queue_id=queue.pk)


@login_required
@require_GET
def queue_disputed(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    return _render_disputed(request, queue)


@login_required
@require_POST
def item_adjudicate(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
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
        errors = dict([field_error(error, "decision")])
        return _render_disputed(request, queue, item_id=item.pk, posted=posted, errors=errors)
    messages.success(
        request,
        f"Item {item.pk}: {adjudication.get_decision_display().lower()}. "
        "The gate applies it at the next recomputation.",
    )
    return redirect("review:disputed", queue_id=queue.pk)


@login_required
@require_GET
def queue_items(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    return _render_items(request, queue)


@login_required
@require_POST
def item_gold(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    item = selectors.access_item(queue, item_id)
    prefetch_related_objects([queue], "questions")
    item.queue = queue
    answers = gold_from_post(list(queue.questions.all()), request.POST)
    try:
        services.item_set_gold(item=item, answers=answers)
    except AnswersInvalid as invalid:
        return _render_items(request, queue, gold_item=item.pk, gold_errors=invalid.errors)
    messages.success(request, f"Item {item.pk} is gold now.")
    return _redirect_to_items(request, queue)


@login_required
@require_POST
def items_hold_out(request: AuthedRequest, queue_id: int) -> HttpResponse:
    """Hold out the checked items, or (when the form carries `share`) a random share."""
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    try:
        if "share" in request.POST:
            count = services.items_hold_out(
                queue=queue, share=share_from_post(request.POST["share"])
            )
        else:
            count = services.items_hold_out(
                queue=queue, item_ids=item_ids_from_post(request.POST.getlist("item_ids"))
            )
    except ValueError as error:
        default = "share" if "share" in request.POST else "item_ids"
        return _render_items(request, queue, held_out_errors=dict([field_error(error, default)]))
    messages.success(request, f"Held out {count} item{pluralize(count)}.")
    return _redirect_to_items(request, queue)


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
    verdict_reason: str = ""
    decision: str = ""
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def _render_disputed(
    request: AuthedRequest,
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
            verdict_reason=selectors.decision_reason_text(item.decision_reason),
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
        is_pair = item.label is not None and item.label.kind == Label.Kind.PREFERENCE_PAIR
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


# The items page: search, filters, gold and held out -----------------------------------------


@dataclass
class ItemRow:
    item: Item
    summary: str
    display: dict[str, Any]
    verdict_reason: str
    gold: list[GoldField]
    errors: dict[str, str] = field(default_factory=dict)


def _items_query(request: AuthedRequest, form: ItemFilterForm) -> dict[str, str]:
    """The list's valid filters and page, as given in the query string (forms post back
    to it, so a lead returns to the list they acted on)."""
    query = form.query()
    page = request.GET.get("page", "")
    if page.isdigit() and page != "1" and len(page) <= 9:
        query["page"] = page
    return query


def _redirect_to_items(request: AuthedRequest, queue: Queue) -> HttpResponse:
    query = urlencode(_items_query(request, ItemFilterForm(request.GET, queue=queue)))
    return redirect(reverse("review:items", args=[queue.pk]) + (f"?{query}" if query else ""))


def _render_items(
    request: AuthedRequest,
    queue: Queue,
    *,
    gold_item: int | None = None,
    gold_errors: dict[str, str] | None = None,
    held_out_errors: dict[str, str] | None = None,
) -> HttpResponse:
    """The item list; with errors (of the filters, of `gold_item`'s gold form or of the
    held-out forms), a 400 showing them beside the field they belong to. Bad filters list
    no item: a list that ignored them would look filtered and not be."""
    form = ItemFilterForm(request.GET, queue=queue)
    filter_errors = {name: " ".join(map(str, texts)) for name, texts in form.errors.items()}
    query = _items_query(request, form)
    items = Item.objects.none() if filter_errors else selectors.lead_items(queue, form.filters())
    page = Paginator(items, ITEMS_PAGE_SIZE).get_page(query.get("page", 1))
    gate_questions = gated(queue.questions.all())
    rows = []
    for item in page.object_list:
        errors, shown = {}, item.gold_answers or {}
        if item.pk == gold_item:  # a rejected form: show what was posted, with the errors
            errors = gold_errors or {}
            shown = {q.key: request.POST.get(f"gold-{q.key}") for q in gate_questions}
        display = _lead_display(item)
        rows.append(
            ItemRow(
                item=item,
                summary=_summary(display),
                display=display,
                verdict_reason=selectors.decision_reason_text(item.decision_reason),
                gold=[gold_field(q, item, shown.get(q.key), errors) for q in gate_questions],
                errors=errors,
            )
        )
    errors = gold_errors or held_out_errors or filter_errors
    context = {
        "queue": queue,
        "page": page,
        "rows": rows,
        "counts": selectors.lead_item_counts(queue),
        "form": form,
        "filtered": bool(form.query()),
        "annotators": selectors.queue_annotator_names(queue),
        "query": urlencode(query),
        "page_query": urlencode({k: v for k, v in query.items() if k != "page"}),
        "gold_item": gold_item,
        "errors": errors,
        "filter_errors": filter_errors,
        "held_out_errors": held_out_errors or {},
        "lead_page": "items",
    }
    return render(request, "review/items.html", context, status=400 if errors else 200)


def _summary(display: dict[str, Any]) -> str:
    """The item's last user message (or first message) as one line of plain text."""
    prompt = display["prompt"]
    users = [m for m in prompt if m.get("role") == "user"] or prompt
    return " ".join(message_text(users[-1].get("content")).split()) if users else ""


# One item, as its lead sees it ---------------------------------------------------------------


@login_required
@require_GET
def item_detail(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    """Everything about one item: content, verdict and why, the answers, flags and skips;
    with the lead's actions on it (reopen a final verdict, release from hold-out)."""
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    item = selectors.item_for_lead(queue, item_id)
    questions = list(queue.questions.all())
    final = verdict_is_final(item, adjudicated_at=adjudicated_at_of(item))
    context = {
        "queue": queue,
        "item": item,
        "display": _lead_display(item),
        "verdict_reason": selectors.decision_reason_text(item.decision_reason),
        "questions": questions,
        "annotations": [_annotation_row(a, questions) for a in item.annotations.all()],
        "flags": list(item.flags.all()),
        "skips": item.skips,  # type: ignore[attr-defined]  # the prefetch's to_attr
        "can_reopen": final and item.status != Item.Status.DISCARDED,
        "lead_page": "items",
    }
    return render(request, "review/item.html", context)


@login_required
@require_POST
def item_reopen(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    item = selectors.access_item(queue, item_id)
    try:
        reopen_item(item=item, by=request.user)
    except ReviewConflict as conflict:
        messages.error(request, f"Item {item.pk} was not reopened. {conflict}")
    else:
        messages.success(
            request,
            f"Item {item.pk} is reopened: each of its annotators may change their answers "
            "once, and the gate decides again after the next change.",
        )
    return redirect("review:item", queue_id=queue.pk, item_id=item.pk)


@login_required
@require_POST
def item_release(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    """Release an item from the hold-out: it may go into training exports again."""
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    item = selectors.access_item(queue, item_id)
    if services.item_release_hold_out(item=item):
        messages.success(
            request,
            f"Item {item.pk} is released from the hold-out: training exports may include "
            "it again. Hold it out again from the item list.",
        )
    else:
        messages.info(request, f"Item {item.pk} was not held out.")
    if request.POST.get("back") == "item":
        return redirect("review:item", queue_id=queue.pk, item_id=item.pk)
    return _redirect_to_items(request, queue)


# Flags and skips ----------------------------------------------------------------------------


@login_required
@require_GET
def queue_flags(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    return _render_flags(request, queue)


@login_required
@require_POST
def flag_resolve(request: AuthedRequest, queue_id: int, flag_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    flag = selectors.access_open_flag(queue, flag_id)
    note = request.POST.get("note", "")
    try:
        resolved = services.flag_resolve(flag=flag, by=request.user, note=note)
    except ValueError as error:
        errors = dict([field_error(error, "note")])
        return _render_flags(request, queue, flag_id=flag.pk, note=note, errors=errors)
    if resolved:
        messages.success(request, f"The flag on item {flag.item_id} is resolved.")
    else:
        messages.info(request, f"The flag on item {flag.item_id} was resolved already.")
    return redirect(_flags_url(queue, _flags_query(request)))


@dataclass
class FlagRow:
    flag: ItemFlag
    summary: str
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class SkipRow:
    assignment: Assignment
    summary: str


def _flags_query(request: AuthedRequest) -> dict[str, str]:
    query = {}
    for name in ("page", "skips"):
        value = request.GET.get(name, "")
        if value.isdigit() and value != "1" and len(value) <= 9:
            query[name] = value
    return query


def _flags_url(queue: Queue, query: dict[str, str]) -> str:
    encoded = urlencode(query)
    return reverse("review:flags", args=[queue.pk]) + (f"?{encoded}" if encoded else "")


def _render_flags(
    request: AuthedRequest,
    queue: Queue,
    *,
    flag_id: int | None = None,
    note: str = "",
    errors: dict[str, str] | None = None,
) -> HttpResponse:
    """Open flags and skips, newest first, a page of each; with `errors`, a 400 showing
    them on `flag_id`'s form."""
    query = _flags_query(request)
    flags = Paginator(selectors.open_flags(queue), FLAGS_PAGE_SIZE).get_page(query.get("page", 1))
    skips = Paginator(selectors.skipped_with_reasons(queue), FLAGS_PAGE_SIZE).get_page(
        query.get("skips", 1)
    )
    flag_rows = []
    for flag in flags.object_list:
        row = FlagRow(flag=flag, summary=_summary(selectors.item_display(flag.item)))
        if flag.pk == flag_id:
            row.note, row.errors = note, errors or {}
        flag_rows.append(row)
    context = {
        "queue": queue,
        "flags": flags,
        "flag_rows": flag_rows,
        "skips": skips,
        "skip_rows": [
            SkipRow(assignment=a, summary=_summary(selectors.item_display(a.item)))
            for a in skips.object_list
        ],
        "query": urlencode(query),
        "flags_query": urlencode({k: v for k, v in query.items() if k != "page"}),
        "skips_query": urlencode({k: v for k, v in query.items() if k != "skips"}),
        "error_flag": flag_id if errors else None,
        "errors": errors or {},
        "lead_page": "flags",
    }
    return render(request, "review/flags.html", context, status=400 if errors else 200)
