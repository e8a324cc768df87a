"""A lead's exclusion of an annotator's answers from a queue's agreement and gate, and its
revocation: two forms on the agreement page (review/exclusions.py does the writes).

As every lead page, 404 for anyone who does not lead the queue's project. A bad form
renders the agreement page again with status 400 and the field's error beside it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from core.typing import AuthedRequest
from review import exclusions, selectors
from review.forms import field_error
from review.views.lead import agreement_page

RECOMPUTED = "Agreement is recomputed: the figures below change once that has run."


@login_required
@require_POST
def annotator_exclude(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    username = request.POST.get("username", "")
    reason = request.POST.get("reason", "")
    try:
        exclusions.annotator_exclude(
            queue=queue, username=username, lead=request.user, reason=reason
        )
    except ValueError as error:
        field, message = field_error(error, "reason")
        posted = {"username": username, "reason": reason, "field": field, "message": message}
        return agreement_page(request, queue, exclusion_error=posted, status=400)
    messages.success(
        request, f"{username}'s answers no longer count in this queue's agreement. {RECOMPUTED}"
    )
    return redirect("review:agreement", queue_id=queue.pk)


@login_required
@require_POST
def annotator_include(request: AuthedRequest, queue_id: int) -> HttpResponse:
    queue = selectors.access_queue(request.user, queue_id, lead=True)
    username = request.POST.get("username", "")
    try:
        exclusions.annotator_exclusion_revoke(queue=queue, username=username, lead=request.user)
    except ValueError as error:
        _, message = field_error(error, "username")
        posted = {"username": username, "field": "username", "message": message}
        return agreement_page(request, queue, exclusion_error=posted, status=400)
    messages.success(request, f"{username}'s answers count again. {RECOMPUTED}")
    return redirect("review:agreement", queue_id=queue.pk)
