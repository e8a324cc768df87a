"""What the feedback API reads and answers, as the OpenAPI schema documents it.

The views build their answers as plain dicts (the session answer is read in bulk); each
serializer here names exactly the keys and types of one of those dicts, and
tests/test_api_schema.py checks real answers against them, so the two cannot drift apart.

A field named like an attribute of DRF's Field or Serializer (errors, source, label, style,
required) carries `type: ignore[assignment]`: the name is the API's; DRF keeps its own
attribute on the instance, so the class attribute shadows nothing at run time.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers

from feedback import event_schema
from feedback.models import Event, Label, Session

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


def _ref_field(**kwargs: Any) -> serializers.CharField:
    kwargs.setdefault("help_text", "No control characters.")
    return serializers.CharField(max_length=event_schema.MAX_ID_LENGTH, **kwargs)


def _text_field(**kwargs: Any) -> serializers.CharField:
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


class EventBatchSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=EVENT_SCHEMA,
        help_text="At most 1,000 events and 5 MB per request (GLEANER_MAX_EVENTS_PER_REQUEST, "
        "GLEANER_MAX_REQUEST_BYTES).",
    )


class EventErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The event's position in the batch.")
    id = serializers.CharField(allow_null=True, help_text="Its id, if a string.")
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="Field -> message."
    )


class IngestResultSerializer(serializers.Serializer):
    """What `IngestResult.as_response` answers (200, or 207 with refused events)."""

    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Event ids already stored: unchanged.")
    rejected = serializers.IntegerField()
    errors = EventErrorSerializer(many=True, help_text="One per refused event.")  # type: ignore[assignment]


class MessageSerializer(serializers.Serializer):
    """A chat message as stored: text parts are joined into one string on the way in."""

    role = serializers.CharField()
    content = serializers.CharField(allow_blank=True)


class SessionLabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Label.Kind.choices)
    source = serializers.ChoiceField(choices=Label.Source.choices)  # type: ignore[assignment]
    rule = serializers.CharField()
    confidence = serializers.FloatField()
    weight = serializers.FloatField()
    status = serializers.ChoiceField(
        choices=["auto_accepted", "in_review", "accepted", "rejected", "excluded"]
    )
    review_reason = serializers.ChoiceField(choices=Label.ReviewReason.choices, allow_null=True)
    prompt = MessageSerializer(many=True, help_text="The conversation before the answer.")
    chosen = serializers.CharField(required=False, help_text="Preference pairs only.")
    rejected = serializers.CharField(required=False, help_text="Preference pairs only.")
    completion = serializers.CharField(required=False, help_text="Completions only.")
    label = serializers.BooleanField(  # type: ignore[assignment]
        required=False, allow_null=True, help_text="Completions only: good or bad."
    )
    evidence = serializers.DictField(
        child=serializers.JSONField(),
        help_text="The behaviour the rule read, by name; which names depends on the rule.",
    )


class GenerationSignalsSerializer(serializers.Serializer):
    """`feedback.derivation.GenerationSignals` without final_text; {} until derived."""

    edit_ratio = serializers.FloatField(required=False, help_text="Output -> final text, 0 to 1.")
    edits = serializers.IntegerField(required=False)
    edit_kind = serializers.ChoiceField(
        choices=["none", "correction", "cosmetic", "trim", "note", "rewrite"],
        required=False,
        help_text="What the user's edit was (feedback/edits.py); none when unedited.",
    )
    regenerated = serializers.BooleanField(required=False)
    chain_position = serializers.IntegerField(
        required=False, help_text="1 for the first generation of its regenerate chain."
    )
    chain_length = serializers.IntegerField(required=False)
    copied = serializers.BooleanField(required=False)
    shared = serializers.BooleanField(required=False)
    dwell_ms = serializers.IntegerField(required=False)
    rating = serializers.FloatField(required=False, allow_null=True)
    downstream_action = serializers.BooleanField(required=False)


class SessionGenerationSerializer(serializers.Serializer):
    generation_id = serializers.CharField()
    input = MessageSerializer(many=True)
    output = serializers.CharField(allow_blank=True)
    final_text = serializers.CharField(
        allow_blank=True, help_text="The text after the user's last edit."
    )
    model = serializers.CharField(allow_blank=True)
    replaces = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    metadata = serializers.DictField(
        child=serializers.JSONField(), help_text="As the client sent it ({} for none)."
    )
    signals = GenerationSignalsSerializer(help_text="Derived from the session's events.")
    labels = SessionLabelSerializer(many=True)


class SessionEventSerializer(serializers.Serializer):
    """An event as stored: the fields every event has, then those of its type."""

    id = serializers.CharField()
    type = serializers.ChoiceField(choices=Event.Type.choices)
    timestamp = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    generation_id = serializers.CharField(allow_null=True)
    input = MessageSerializer(many=True, required=False, help_text="generation")
    output = serializers.CharField(required=False, allow_blank=True, help_text="generation")
    model = serializers.CharField(required=False, allow_blank=True, help_text="generation")
    replaces = serializers.CharField(required=False, allow_null=True, help_text="generation")
    metadata = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="generation"
    )
    text = serializers.CharField(required=False, allow_blank=True, help_text="edit, copy")
    dwell_ms = serializers.IntegerField(required=False, help_text="view")
    value = _RatingField(required=False, help_text="rating")
    comment = serializers.CharField(required=False, allow_blank=True, help_text="rating")
    # Labelled choices: the same bare set is the request's SessionOutcomeEvent enum, and
    # drf-spectacular cannot name two enums of one field name shared across components.
    outcome = serializers.ChoiceField(
        choices=[(outcome, outcome.title()) for outcome in event_schema.OUTCOMES],
        required=False,
        help_text="session_outcome",
    )
    signal = serializers.CharField(required=False, help_text="session_outcome")


class SessionDetailSerializer(serializers.Serializer):
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
