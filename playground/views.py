"""The playground: a chat page with a canned model, instrumented with the capture snippet.

State (the visitor's playground sessions and their generations' prompts) lives in the
visitor's Django session: the answer endpoint only answers in sessions this visitor opened
and only regenerates answers this visitor was given.
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

from core.typing import AuthedRequest
from playground import selectors, services
from tenancy.access import access_project
from tenancy.models import Project, origin_normalize

PROJECT_SLUG = "demo"
STATE = "playground"
MAX_PROMPT_CHARS = 2000
SESSION_ID = re.compile(r"pg_[0-9a-f]{16}")
# Bound the Django session's size: answers per playground session, sessions per visitor.
MAX_GENERATIONS = 200
MAX_SESSIONS = 10


def _project(request: AuthedRequest) -> Project | None:
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
def chat(request: AuthedRequest) -> HttpResponse:
    """A new playground session on every visit, with the publishable key for this origin."""
    project = _project(request)
    if project is None:
        return _missing(request)
    origin = origin_normalize(f"{request.scheme}://{request.get_host()}")
    key = services.playground_key_for(project=project, origin=origin)
    session_id = f"pg_{secrets.token_hex(8)}"  # matches SESSION_ID
    sessions = request.session.get(STATE, {})
    sessions[session_id] = {}
    # Several tabs each keep their session; the oldest are forgotten (dicts keep order).
    request.session[STATE] = dict(list(sessions.items())[-MAX_SESSIONS:])
    context = {
        "key": key,
        "session_id": session_id,
        "user_id": f"playground:{request.user.get_username()}",
        "endpoint": reverse("api-events"),
    }
    return render(request, "playground/chat.html", context)


class AnswerInvalid(Exception):
    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field, self.message, self.status = field, message, status


def _answer_request(body: bytes, sessions: dict) -> tuple[str, str, int, str | None]:
    """(session id, prompt, variant, replaces) of an answer request, or AnswerInvalid."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise AnswerInvalid("body", "The body must be a JSON object.")
    session_id = data.get("session_id")
    if not isinstance(session_id, str) or session_id not in sessions:
        raise AnswerInvalid("session_id", "Not your playground session: reload the page.", 404)
    generations = sessions[session_id]
    if len(generations) >= MAX_GENERATIONS:
        raise AnswerInvalid("session_id", "This session has enough answers: start another.", 409)
    replaces = data.get("replaces")
    if replaces is not None:
        if not isinstance(replaces, str) or replaces not in generations:
            raise AnswerInvalid("replaces", "Not an answer of this playground session.")
        prompt, variant = generations[replaces]
        return session_id, prompt, variant + 1, replaces
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise AnswerInvalid("prompt", "Ask something: the prompt is empty.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise AnswerInvalid("prompt", f"At most {MAX_PROMPT_CHARS} characters.")
    return session_id, prompt, 0, None


@login_required
@require_POST
def answer(request: AuthedRequest) -> JsonResponse:
    """The canned model answers: {"session_id", "prompt"} asks, {"session_id", "replaces":
    "<generation id>"} regenerates one of the session's answers. The generation is ingested
    here, server side; the page gets its id and text."""
    project = _project(request)
    if project is None:
        return _error("project", "The playground's project is missing.", 404)
    sessions = request.session.get(STATE, {})
    try:
        session_id, prompt, variant, replaces = _answer_request(request.body, sessions)
    except AnswerInvalid as invalid:
        return _error(invalid.field, invalid.message, invalid.status)
    generation_id, canned_answer = services.generation_create(
        project=project,
        session_id=session_id,
        user_id=f"playground:{request.user.get_username()}",
        prompt=prompt,
        variant=variant,
        replaces=replaces,
    )
    sessions[session_id][generation_id] = [prompt, variant]
    request.session.modified = True
    return JsonResponse(
        {"generation_id": generation_id, "output": canned_answer.text, "replaces": replaces}
    )


@login_required
@require_GET
def ended(request: AuthedRequest) -> HttpResponse:
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
