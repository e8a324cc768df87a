"""The annotator's pages: my queues, and the work page (claim, answer, skip).

With htmx (`request.htmx`) submit and skip answer with the next item's partial; without
JavaScript they redirect to the work page (post/redirect/get).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from core.typing import AuthedRequest
from review import claims, selectors
from review.answers import AnswersInvalid
from review.forms import QuestionField, answers_from_post, question_fields, seconds_from_post
from review.models import Assignment, Item, Queue


@login_required
@require_GET
def queue_list(request: AuthedRequest) -> HttpResponse:
    queues = selectors.queues_with_progress(request.user)
    led = selectors.led_project_ids(request.user)
    context = {
        "queues": queues,
        "leads_all": led is None,
        "led": led or set(),
        "leads_any": led is None or bool(led),
    }
    return render(request, "review/queue_list.html", context)


@never_cache  # Back must show the current claim, not a stale copy of an answered item.
@login_required
@require_GET
def work(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_work_queue(request.user, queue_id)
    return _render_work(request, queue)


@login_required
@require_POST
def item_submit(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_work_queue(request.user, queue_id)
    # The questions (read with the queue) serve parsing, validation and the page that
    # follows; the item is read under its lock only.
    questions = selectors.queue_questions(queue)
    answers = answers_from_post(questions, request.POST)
    try:
        claims.annotation_submit_to(
            queue=queue,
            item_id=item_id,
            user=request.user,
            answers=answers,
            seconds_spent=seconds_from_post(request.POST.get("seconds_spent")),
            questions=questions,
        )
    except Item.DoesNotExist:
        raise Http404("No such item.") from None
    except AnswersInvalid as invalid:
        item = selectors.access_item(queue, item_id)  # a missing item: 404 before the 400
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
        queue.mine_done += 1
        messages.success(request, f"Saved your answers to item {item_id}.")
    return _next_item(request, queue)


@login_required
@require_POST
def item_skip(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_work_queue(request.user, queue_id)
    item = selectors.access_item(queue, item_id)
    try:
        claims.item_skip(item=item, user=request.user)
    except claims.ReviewConflict as conflict:
        messages.warning(request, f"{conflict} Here is the next item.")
    else:
        messages.info(request, f"Skipped item {item.pk}.")
    return _next_item(request, queue)


def _next_item(request: AuthedRequest, queue: Queue) -> HttpResponse:
    if request.htmx:
        return _render_work(request, queue)
    return redirect("review:work", queue_id=queue.pk)


def _render_work(
    request: AuthedRequest,
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
        questions = selectors.queue_questions(queue)
        item = selectors.item_display(
            assignment.item,
            assignment.presentation,
            blind=selectors.is_blind_comparison(questions),
        )
        fields = question_fields(questions, answers or {}, errors or {})
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
