from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import RETRY_AFTER, error_responses
from core.typing import AuthedApiRequest
from feedback import event_schema, selectors, services
from feedback.models import Label
from feedback.serializers import (
    EventBatchSerializer,
    IngestResultSerializer,
    SessionDetailSerializer,
)
from tenancy.authentication import HasProjectKey, IngestKeyThrottle, ProjectKeyAuthentication
from tenancy.keys import api_key_mark_used
from tenancy.models import PUBLISHABLE_EVENT_TYPES, ApiKey


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a batch is parsed, checked and stored.

    A 1,000-event batch allocates some 20,000 containers, all kept until the response:
    each time the collector ran it walked them again, about a quarter of the request's
    Python time. They hold no cycles, so nothing is left for it to find; whatever else
    the request left is collected when it runs again after.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _error(status_code: int, field: str, message: str) -> Response:
    return Response({"detail": message, "errors": {field: message}}, status=status_code)


class KeyRequest(Request):
    """A request that passed `HasProjectKey`: its auth is the project's ingestion key."""

    auth: ApiKey


class EventIngestApi(APIView):
    """Ingest a batch of behavioural events (DESIGN.md, "Ingestion API")."""

    authentication_classes = [ProjectKeyAuthentication]
    permission_classes = [HasProjectKey]
    throttle_classes = [IngestKeyThrottle]
    parser_classes: list = []  # the body is read here, after the size check

    @extend_schema(
        operation_id="events_ingest",
        description="A secret key (glk_..., from a server) may send every event type. A "
        "publishable key (glpub_..., from a web page) only sends browser events (never "
        "'generation': refused in errors naming 'type'), only with an Origin listed on the "
        "key (403 otherwise, also with no Origin), and may come as ?key= for "
        "navigator.sendBeacon, which also sends the JSON as text/plain. A preflight OPTIONS "
        "from an origin listed on an active publishable key is answered 204 with the CORS "
        "headers; from any other origin 403 without them (docs/ingestion.md).",
        request={"application/json": EventBatchSerializer, "text/plain": EventBatchSerializer},
        responses={
            200: OpenApiResponse(
                IngestResultSerializer, description="Every event stored or a duplicate."
            ),
            207: OpenApiResponse(
                IngestResultSerializer,
                description="Some events refused, each in errors naming its fields; the rest "
                "stored.",
            ),
            **error_responses(
                400,
                403,
                413,
                described={
                    400: "The body is not JSON, or not an object with an 'events' list.",
                    401: "Missing, unknown or revoked ingestion key, or a secret key in ?key=.",
                    403: "A publishable key from an origin it does not list, or without "
                    "an Origin header; errors names 'Origin'.",
                    413: "Over 1,000 events or 5 MB.",
                    429: "Over the key's rate limit, or too many failed keys from this address.",
                },
            ),
        },
        parameters=[
            RETRY_AFTER,
            OpenApiParameter(
                "key",
                str,
                OpenApiParameter.QUERY,
                description="A publishable key (glpub_...), for navigator.sendBeacon, which "
                "cannot send an Authorization header. Never a secret key: 401.",
            ),
        ],
        # A security requirement object, as OpenAPI has it; the stubs say a list of names.
        auth=[{"ProjectKey": []}],  # type: ignore[list-item]
    )
    def post(self, request: KeyRequest) -> Response:
        max_bytes = settings.GLEANER_MAX_REQUEST_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not (declared.isascii() and declared.isdigit()):
            return _error(400, "body", "The Content-Length header is not a number.")
        if int(declared) > max_bytes:
            return _error(413, "body", f"Request body is larger than {max_bytes} bytes.")
        body = request.body
        if len(body) > max_bytes:
            return _error(413, "body", f"Request body is larger than {max_bytes} bytes.")
        with _collector_paused():
            try:
                data = event_schema.loads_batch(body)
            except event_schema.BodyInvalid as invalid:
                return _error(400, invalid.field, invalid.message)
            if not isinstance(data, dict) or not isinstance(data.get("events"), list):
                return _error(400, "events", "Body must be a JSON object with an 'events' list.")
            events = data["events"]
            limit = settings.GLEANER_MAX_EVENTS_PER_REQUEST
            if len(events) > limit:
                return _error(413, "events", f"At most {limit} events per request ({len(events)}).")

            key = request.auth
            api_key_mark_used(key=key)
            result = services.events_ingest(
                project=key.project,
                events=events,
                allowed_types=PUBLISHABLE_EVENT_TYPES if key.is_publishable else None,
            )
        code = status.HTTP_207_MULTI_STATUS if result.rejected else status.HTTP_200_OK
        return Response(result.as_response(), status=code)


def _label(label: Label) -> dict:
    body = {
        "id": label.id,
        "kind": label.kind,
        "source": label.source,
        "rule": label.rule,
        "confidence": label.confidence,
        "weight": label.weight,
        "status": label.status,
        "review_reason": label.review_reason or None,
        "prompt": label.prompt,
    }
    if label.kind == Label.Kind.PREFERENCE_PAIR:
        body.update(chosen=label.chosen, rejected=label.rejected)
    elif label.kind == Label.Kind.COMPLETION:
        body.update(completion=label.completion, label=label.label)
    body["evidence"] = label.evidence
    return body


class SessionDetailApi(APIView):
    """A session with its generations, their signals and labels, and its events."""

    @extend_schema(
        parameters=[
            OpenApiParameter("project", str, required=True, description="Project slug"),
            RETRY_AFTER,
        ],
        responses={
            200: SessionDetailSerializer,
            **error_responses(400, 404, described={400: "No or bad 'project' parameter."}),
        },
    )
    def get(self, request: AuthedApiRequest, session_id: str) -> Response:
        slug = request.query_params.get("project", "")
        if not slug:
            return _error(400, "project", "Query parameter 'project' (a project slug) is required.")
        session = selectors.access_session(request.user, slug, session_id)
        generations = list(selectors.session_generations(session))
        events = selectors.session_events(session)
        texts = selectors.final_texts(generations, events)
        return Response(
            {
                "session_id": session.external_id,
                "project": session.project.slug,
                "user_id": session.user_ref or None,
                "outcome": session.outcome,
                "outcome_signal": session.outcome_signal or None,
                "retries": session.retries,
                "derived_at": session.derived_at,
                "first_event_at": session.first_event_at,
                "last_event_at": session.last_event_at,
                "generations": [
                    {
                        "generation_id": g.external_id,
                        "input": g.input,
                        "output": g.output,
                        "final_text": texts[g.external_id],
                        "model": g.model,
                        "replaces": g.replaces_ref or None,
                        "created_at": g.created_at,
                        "metadata": g.metadata,
                        "signals": g.signals,
                        "labels": [_label(label) for label in g.labels.all()],
                    }
                    for g in generations
                ],
                "events": [
                    {
                        "id": e.client_id,
                        "type": e.type,
                        "timestamp": e.timestamp,
                        "received_at": e.received_at,
                        "generation_id": e.generation_ref or None,
                        **e.payload,
                    }
                    for e in events
                ],
                "events_truncated": len(events) >= selectors.SESSION_EVENTS_SHOWN,
            }
        )
