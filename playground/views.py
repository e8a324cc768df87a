"""The playground: a chat page with a canned model, instrumented with the capture snippet.

State (the playground session's id and its generations' prompts) lives in the visitor's
Django session: the answer endpoint only regenerates generations this visitor was given.
"""

from __future__ import annotations

import json
import re
import secrets
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from feedback.models import Project, origin_normalize
from feedback.selectors import access_project
from playground import selectors, services

PROJECT_SLUG = "demo"
STATE = "playground"
MAX_PROMPT_CHARS = 2000
SESSION_ID = re.compile(r"pg_[0-9a-f]{16}")
MAX_GENERATIONS = 200  # per playground session, to bound the Django session's size


def _project(request: HttpRequest) -> Project | None:
    try:
        return access_project(request.user, PROJECT_SLUG)
    except Http404:
        return None


def _missing(request: HttpRequest) -> HttpResponse:
    return render(request, "playground/missing.html", {"slug": PROJECT_SLUG}, status=404)


def _error(field: str, message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"detail": message, "errors": {field: message}}, status=status)


@login_required
@require_GET
def chat(request: HttpRequest) -> HttpResponse:
    """A new playground session on every visit, with the publishable key for this origin."""
    project = _project(request)
    if project is None:
        return _missing(request)
    origin = origin_normalize(f"{request.scheme}://{request.get_host()}")
    key = services.playground_key_for(project=project, origin=origin)
    session_id = f"pg_{secrets.token_hex(8)}"  # matches SESSION_ID
    request.session[STATE] = {"session_id": session_id, "generations": {}}
    context = {
        "key": key,
        "session_id": session_id,
        "user_id": f"playground:{request.user.get_username()}",
        "endpoint": reverse("api-events"),
    }
    return render(request, "playground/chat.html", context)


@login_required
@require_POST
def answer(request: HttpRequest) -> JsonResponse:
    """The canned model answers: {"prompt": "..."} asks, {"replaces": "<generation id>"}
    regenerates one of this session's answers. The generation is ingested here, server side."""
    project = _project(request)
    state = request.session.get(STATE)
    if project is None or state is None:
        return _error("session", "No playground session: open the playground page.", 404)
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _error("body", "The body must be a JSON object.")
    if not isinstance(body, dict):
        return _error("body", "The body must be a JSON object.")
    generations = state["generations"]
    if len(generations) >= MAX_GENERATIONS:
        return _error("session", "This session has enough answers: start a new one.", 409)
    replaces = body.get("replaces")
    if replaces is not None:
        if not isinstance(replaces, str) or replaces not in generations:
            return _error("replaces", "Not an answer of this playground session.")
        prompt, variant = generations[replaces][0], generations[replaces][1] + 1
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _error("prompt", "Ask something: the prompt is empty.")
        if len(prompt) > MAX_PROMPT_CHARS:
            return _error("prompt", f"At most {MAX_PROMPT_CHARS} characters.")
        variant = 0
    generation_id, canned_answer = services.generation_create(
        project=project,
        session_id=state["session_id"],
        user_id=f"playground:{request.user.get_username()}",
        prompt=prompt,
        variant=variant,
        replaces=replaces,
    )
    generations[generation_id] = [prompt, variant]
    request.session.modified = True
    return JsonResponse(
        {"generation_id": generation_id, "output": canned_answer.text, "replaces": replaces}
    )


@login_required
@require_GET
def ended(request: HttpRequest) -> HttpResponse:
    """Where the visitor lands after ending a session: links to what Gleaner made of it."""
    project = _project(request)
    if project is None:
        return _missing(request)
    session_id = request.GET.get("session", "")
    if not SESSION_ID.fullmatch(session_id):
        return render(request, "playground/ended.html", {"session_id": None}, status=400)
    label_ids = selectors.session_label_ids(project=project, session_id=session_id)
    context = {
        "session_id": session_id,
        "api_url": reverse("api-session", args=[session_id])
        + "?"
        + urlencode({"project": project.slug}),
        "labels_url": reverse("admin:feedback_label_changelist")
        + "?"
        + urlencode({"q": session_id}),
        "events_url": reverse("admin:feedback_event_changelist")
        + "?"
        + urlencode({"q": session_id}),
        "items_url": reverse("admin:review_item_changelist")
        + "?"
        + urlencode({"label__in": ",".join(map(str, label_ids))})
        if label_ids
        else None,
        "label_count": len(label_ids),
    }
    return render(request, "playground/ended.html", context)
