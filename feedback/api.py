from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import event_schema, selectors, services
from feedback.authentication import HasProjectKey, ProjectKeyAuthentication
from feedback.models import Label
from feedback.ratelimit import IngestKeyThrottle


def _error(status_code: int, field: str, message: str) -> Response:
    return Response({"detail": message, "errors": {field: message}}, status=status_code)


class EventIngestApi(APIView):
    """Ingest a batch of behavioural events (DESIGN.md, "Ingestion API")."""

    authentication_classes = [ProjectKeyAuthentication]
    permission_classes = [HasProjectKey]
    throttle_classes = [IngestKeyThrottle]
    parser_classes: list = []  # the body is read here, after the size check

    class OutputSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        rejected = serializers.IntegerField()
        errors = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request=inline_serializer(
            "EventBatch", {"events": serializers.ListField(child=serializers.DictField())}
        ),
        responses={200: OutputSerializer, 207: OutputSerializer},
        auth=[{"ProjectKey": []}],
    )
    def post(self, request: Request) -> Response:
        max_bytes = settings.GLEANER_MAX_REQUEST_BYTES
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not (declared.isascii() and declared.isdigit()):
            return _error(400, "body", "The Content-Length header is not a number.")
        if int(declared) > max_bytes:
            return _error(413, "body", f"Request body is larger than {max_bytes} bytes.")
        body = request.body
        if len(body) > max_bytes:
            return _error(413, "body", f"Request body is larger than {max_bytes} bytes.")
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

        services.api_key_mark_used(key=request.auth)
        result = services.events_ingest(project=request.auth.project, events=events)
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
        parameters=[OpenApiParameter("project", str, required=True, description="Project slug")],
        responses={200: dict},
    )
    def get(self, request: Request, session_id: str) -> Response:
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
