"""The annotator's pages: my queues, the work page (claim, answer, skip, flag), and my
history in a queue (change an answer, undo a skip).

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
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.typing import AuthedRequest
from review import claims, history, selectors
from review.answers import AnswersInvalid
from review.forms import (
    FlagForm,
    QuestionField,
    SkipForm,
    answers_from_post,
    field_error,
    question_fields,
    seconds_from_post,
)
from review.models import Annotation, Assignment, Item, Queue


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
    form = SkipForm(request.POST)
    if not form.is_valid():
        mine = Assignment.objects.filter(item=item, user=request.user).first()
        return _render_work(
            request,
            queue,
            assignment=mine or Assignment(item=item, queue=queue, user=request.user),
            skip_form=form,
            status=400,
        )
    try:
        claims.item_skip(item=item, user=request.user, reason=form.cleaned_data["skip_reason"])
    except claims.ReviewConflict as conflict:
        messages.warning(request, f"{conflict} Here is the next item.")
    else:
        messages.info(request, f"Skipped item {item.pk}.")
    return _next_item(request, queue)


@login_required
@require_POST
def item_flag(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_work_queue(request.user, queue_id)
    item = selectors.access_item(queue, item_id)
    form = FlagForm(request.POST)
    if form.is_valid():
        try:
            history.item_flag(item=item, user=request.user, reason=form.cleaned_data["reason"])
        except ValueError as error:
            form.add_error(*field_error(error, "reason"))
    if not form.is_valid():
        mine = Assignment.objects.filter(item=item, user=request.user).first()
        return _render_work(
            request,
            queue,
            assignment=mine or Assignment(item=item, queue=queue, user=request.user),
            flag_form=form,
            status=400,
        )
    messages.success(request, f"Flagged item {item.pk} for the queue's leads.")
    return _next_item(request, queue)


# My history: answers to change, skips to undo -----------------------------------------------


@never_cache
@login_required
@require_GET
def my_history(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_work_queue(request.user, queue_id)
    questions = selectors.queue_questions(queue)
    context = {
        "queue": queue,
        "answers": history.my_answers(queue, request.user, questions),
        "skips": history.my_skips(queue, request.user),
        "limit": history.HISTORY_LENGTH,
    }
    return render(request, "review/history.html", context)


@never_cache
@login_required
@require_GET
def previous_answer(request: AuthedRequest, queue_id: int) -> HttpResponse:
    """Where "Previous" and Backspace go: my last answer in the queue, or with `before`
    (an item id) the one I gave before my answer to that item."""
    queue = selectors.access_work_queue(request.user, queue_id)
    before = None
    raw = request.GET.get("before", "")
    if raw:
        item_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
        before = history.my_answer(queue, request.user, item_id) if item_id else None
        if before is None:
            raise Http404("No such answer.")
    previous = history.my_previous_answer(queue, request.user, before)
    if previous is None:
        messages.info(request, "There is no earlier answer of yours in this queue.")
        if before is not None:
            return redirect("review:answers", queue_id=queue.pk, item_id=before.item_id)
        return redirect("review:work", queue_id=queue.pk)
    return redirect("review:answers", queue_id=queue.pk, item_id=previous.item_id)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def my_answers(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    """One of my answered items, shown again with my answers filled in: GET shows it,
    POST changes the answers (if the verdict allows) and goes back to the work page."""
    queue = selectors.access_work_queue(request.user, queue_id)
    annotation = history.my_answer(queue, request.user, item_id)
    if annotation is None:
        raise Http404("No answer of yours to this item.")
    if request.method == "GET":
        return _render_work(request, queue, changing=annotation)
    questions = selectors.queue_questions(queue)
    answers = answers_from_post(questions, request.POST)
    try:
        history.annotation_change(
            queue=queue, item_id=item_id, user=request.user, answers=answers, questions=questions
        )
    except AnswersInvalid as invalid:
        return _render_work(
            request, queue, changing=annotation, answers=answers, errors=invalid.errors, status=400
        )
    except claims.ReviewConflict as conflict:
        messages.warning(request, str(conflict))
        return redirect("review:answers", queue_id=queue.pk, item_id=item_id)
    messages.success(request, f"Changed your answers to item {item_id}.")
    return redirect("review:work", queue_id=queue.pk)


@login_required
@require_POST
def skip_undo(request: AuthedRequest, queue_id: int, item_id: int) -> HttpResponse:
    queue = selectors.access_work_queue(request.user, queue_id)
    try:
        claimed = history.skip_undo(queue=queue, item_id=item_id, user=request.user)
    except Assignment.DoesNotExist:
        raise Http404("You did not skip this item.") from None
    if claimed is None:
        messages.info(
            request,
            f"Undid your skip of item {item_id}: it has no free place now, and may be"
            " offered to you again later.",
        )
    else:
        messages.success(request, f"Undid your skip: item {item_id} is yours to answer.")
    return redirect("review:work", queue_id=queue.pk)


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
    changing: Annotation | None = None,
    skip_form: SkipForm | None = None,
    flag_form: FlagForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The work page (or, for htmx, its work area) showing `assignment`'s item, else the
    user's next claim (resumed or new), else the "queue done" state. With `changing` (my
    answer to an item) it shows that item again, my answers filled in, to change them."""
    busy = False
    if assignment is None and changing is None:
        try:
            assignment = claims.item_claim_next(queue=queue, user=request.user)
        except claims.ClaimBusy:
            busy = True
    item = None
    fields: list[QuestionField] = []
    locked = False
    if changing is not None:
        questions = selectors.queue_questions(queue)
        item = selectors.item_display(
            changing.item, changing.presentation, blind=selectors.is_blind_comparison(questions)
        )
        fields = question_fields(
            questions, changing.answers if answers is None else answers, errors or {}
        )
        locked = not history.answers_changeable(
            changing.item, changing, adjudicated_at=history.adjudicated_at_of(changing.item)
        )
    elif assignment is not None:
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
        "changing": changing,
        "locked": locked,
        "skip_form": skip_form or SkipForm(),
        "flag_form": flag_form or FlagForm(),
        "final_text": history.FINAL,
    }
    template = "review/work.html#work" if request.htmx else "review/work.html"
    if busy and not request.htmx:  # htmx swaps only 2xx in: there the notice is the answer
        response = render(request, template, context, status=503)
        response["Retry-After"] = str(claims.CLAIM_RETRY_AFTER_SECONDS)
        return response
    return render(request, template, context, status=status)
