from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import RETRY_AFTER, error_responses
from feedback import event_schema, selectors, services
from feedback.authentication import HasProjectKey, ProjectKeyAuthentication
from feedback.models import PUBLISHABLE_EVENT_TYPES, Event, Label, Session
from feedback.ratelimit import IngestKeyThrottle


def _error(status_code: int, field: str, message: str) -> Response:
    return Response({"detail": message, "errors": {field: message}}, status=status_code)


# The event batch as the schema documents it. Documentation only: the view parses the body
# itself and feedback.event_schema validates each event, naming every bad field (207).

_TEXT_PARTS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
        "required": ["type", "text"],
    },
}
_MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "minLength": 1, "maxLength": event_schema.MAX_ROLE_LENGTH},
        "content": {"oneOf": [{"type": "string"}, _TEXT_PARTS]},
    },
    "required": ["role", "content"],
}
_TEXT_HELP = (
    "Free text, at most 100 kB as UTF-8 (GLEANER_MAX_TEXT_BYTES); NUL and unpaired "
    "surrogates are stored as U+FFFD."
)


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": _MESSAGE}],
        "description": "The prompt: a string, or chat messages {role, content} whose content "
        "is a string or a list of text parts {type: 'text', text}.",
    }
)
class _PromptField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "number",
                "minimum": -event_schema.MAX_RATING,
                "maximum": event_schema.MAX_RATING,
            },
            {"type": "boolean"},
        ],
        "description": "A number, or true / false for thumbs up / down.",
    }
)
class _RatingField(serializers.JSONField):
    pass


def _ref_field(**kwargs: object) -> serializers.CharField:
    kwargs.setdefault("help_text", "No control characters.")
    return serializers.CharField(max_length=event_schema.MAX_ID_LENGTH, **kwargs)


def _text_field(**kwargs: object) -> serializers.CharField:
    return serializers.CharField(
        allow_blank=True, trim_whitespace=False, help_text=_TEXT_HELP, **kwargs
    )


def _event_serializer(type_: str, **fields: serializers.Field) -> serializers.Serializer:
    """One event type's schema: the fields every event has, then the type's own."""
    common: dict[str, serializers.Field] = {
        "id": _ref_field(help_text="The client's idempotency key, unique per project."),
        "type": serializers.ChoiceField(choices=[type_]),
        "timestamp": serializers.DateTimeField(
            help_text="ISO 8601 with a timezone, from 2000-01-01 to a day ahead."
        ),
        "session_id": _ref_field(help_text="No control characters, no '.' or '..' part."),
        "user_id": _ref_field(required=False, allow_null=True),
    }
    if type_ != "session_outcome":
        common["generation_id"] = _ref_field()
    name = "".join(part.title() for part in type_.split("_")) + "Event"
    return inline_serializer(name, {**common, **fields})


EVENT_SCHEMA = PolymorphicProxySerializer(
    component_name="Event",
    resource_type_field_name="type",
    many=False,
    serializers={
        "generation": _event_serializer(
            "generation",
            input=_PromptField(),
            output=_text_field(),
            model=serializers.CharField(
                max_length=event_schema.MAX_MODEL_LENGTH, required=False, allow_null=True
            ),
            replaces=_ref_field(
                required=False, allow_null=True, help_text="The generation regenerated."
            ),
            metadata=serializers.DictField(
                child=serializers.JSONField(),
                required=False,
                allow_null=True,
                help_text="At most 20 levels deep and 16 kB as JSON; finite numbers, "
                "integers within 64 bits.",
            ),
        ),
        "edit": _event_serializer("edit", text=_text_field()),
        "regenerate": _event_serializer("regenerate"),
        "copy": _event_serializer("copy", text=_text_field(required=False)),
        "share": _event_serializer("share"),
        "view": _event_serializer(
            "view",
            dwell_ms=serializers.FloatField(
                min_value=0,
                max_value=event_schema.MAX_DWELL_MS,
                help_text="Milliseconds (up to 24 h); a fraction is rounded.",
            ),
        ),
        "rating": _event_serializer(
            "rating", value=_RatingField(), comment=_text_field(required=False)
        ),
        "session_outcome": _event_serializer(
            "session_outcome",
            outcome=serializers.ChoiceField(choices=event_schema.OUTCOMES),
            signal=_ref_field(required=False, help_text="What showed the outcome."),
        ),
    },
)


class EventIngestApi(APIView):
    """Ingest a batch of behavioural events (DESIGN.md, "Ingestion API")."""

    authentication_classes = [ProjectKeyAuthentication]
    permission_classes = [HasProjectKey]
    throttle_classes = [IngestKeyThrottle]
    parser_classes: list = []  # the body is read here, after the size check

    @extend_schema_serializer(component_name="EventBatch")
    class InputSerializer(serializers.Serializer):
        events = serializers.ListField(
            child=EVENT_SCHEMA,
            help_text="At most 1,000 events and 5 MB per request (GLEANER_MAX_EVENTS_PER_REQUEST, "
            "GLEANER_MAX_REQUEST_BYTES).",
        )

    @extend_schema_serializer(component_name="IngestResult")
    class OutputSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField(help_text="Event ids already stored: unchanged.")
        rejected = serializers.IntegerField()
        errors = inline_serializer(
            "EventError",
            {
                "index": serializers.IntegerField(help_text="The event's position in the batch."),
                "id": serializers.CharField(allow_null=True, help_text="Its id, if a string."),
                "errors": serializers.DictField(
                    child=serializers.CharField(), help_text="Field -> message."
                ),
            },
            many=True,
        )

    @extend_schema(
        operation_id="events_ingest",
        description="A secret key (glk_..., from a server) may send every event type. A "
        "publishable key (glpub_..., from a web page) only sends browser events (never "
        "'generation': refused in errors naming 'type'), only with an Origin listed on the "
        "key (403 otherwise, also with no Origin), and may come as ?key= for "
        "navigator.sendBeacon, which also sends the JSON as text/plain. A preflight OPTIONS "
        "from an origin listed on an active publishable key is answered 204 with the CORS "
        "headers; from any other origin 403 without them (docs/ingestion.md).",
        request={"application/json": InputSerializer, "text/plain": InputSerializer},
        responses={
            200: OpenApiResponse(
                OutputSerializer, description="Every event stored or a duplicate."
            ),
            207: OpenApiResponse(
                OutputSerializer,
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

        key = request.auth
        services.api_key_mark_used(key=key)
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


class SessionLabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Label.Kind.choices)
    source = serializers.ChoiceField(choices=Label.Source.choices)
    rule = serializers.CharField()
    confidence = serializers.FloatField()
    weight = serializers.FloatField()
    status = serializers.ChoiceField(
        choices=["auto_accepted", "in_review", "accepted", "rejected", "excluded"]
    )
    review_reason = serializers.ChoiceField(choices=Label.ReviewReason.choices, allow_null=True)
    prompt = serializers.JSONField(help_text="The conversation before the answer.")
    chosen = serializers.CharField(required=False, help_text="Preference pairs only.")
    rejected = serializers.CharField(required=False, help_text="Preference pairs only.")
    completion = serializers.CharField(required=False, help_text="Completions only.")
    label = serializers.BooleanField(
        required=False, allow_null=True, help_text="Completions only: good or bad."
    )
    evidence = serializers.DictField(child=serializers.JSONField())


class SessionGenerationSerializer(serializers.Serializer):
    generation_id = serializers.CharField()
    input = serializers.JSONField(help_text="Chat messages [{role, content}].")
    output = serializers.CharField()
    final_text = serializers.CharField(help_text="The text after the user's last edit.")
    model = serializers.CharField()
    replaces = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    metadata = serializers.DictField(child=serializers.JSONField())
    signals = serializers.DictField(child=serializers.JSONField(), help_text="Derived.")
    labels = SessionLabelSerializer(many=True)


class SessionEventSerializer(serializers.Serializer):
    """An event as stored; the fields of its type (text, dwell_ms, ...) follow these."""

    id = serializers.CharField()
    type = serializers.ChoiceField(choices=Event.Type.choices)
    timestamp = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    generation_id = serializers.CharField(allow_null=True)


class SessionDetailApi(APIView):
    """A session with its generations, their signals and labels, and its events."""

    @extend_schema_serializer(component_name="SessionDetail")
    class OutputSerializer(serializers.Serializer):
        session_id = serializers.CharField()
        project = serializers.SlugField()
        user_id = serializers.CharField(allow_null=True)
        outcome = serializers.ChoiceField(choices=Session.Outcome.choices)
        outcome_signal = serializers.CharField(allow_null=True)
        retries = serializers.IntegerField()
        derived_at = serializers.DateTimeField(allow_null=True)
        first_event_at = serializers.DateTimeField()
        last_event_at = serializers.DateTimeField()
        generations = SessionGenerationSerializer(many=True)
        events = SessionEventSerializer(many=True, help_text="The first 1,000 by time.")
        events_truncated = serializers.BooleanField()

    @extend_schema(
        parameters=[
            OpenApiParameter("project", str, required=True, description="Project slug"),
            RETRY_AFTER,
        ],
        responses={
            200: OutputSerializer,
            **error_responses(400, 404, described={400: "No or bad 'project' parameter."}),
        },
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
