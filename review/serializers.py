"""What the review API answers (and the question shape it also reads), as the OpenAPI
schema documents it.

The views build their answers as plain dicts; each serializer here names exactly the keys
and types of one of them, and tests/test_api_schema.py checks real answers against them.
Fields named like a DRF attribute (label, source, required) carry `type: ignore[assignment]`
for the reason given in feedback/serializers.py.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from core.storable import INT_MAX, INT_MIN
from review.models import MAX_RATING_POINTS, Adjudication, Question

MAX_ANCHOR_CHARS = 100
POINT = re.compile(r"-?[0-9]{1,12}")


def choice_field(choices: list[tuple[str, str]], **kwargs) -> serializers.ChoiceField:  # noqa: ANN003
    """A ChoiceField whose error lists the choices instead of echoing the input (which may
    hold a lone surrogate that no JSON response can carry)."""
    names = ", ".join(value for value, _ in choices)
    return serializers.ChoiceField(
        choices=choices, error_messages={"invalid_choice": f"Must be one of: {names}."}, **kwargs
    )


class QuestionSerializer(serializers.Serializer):
    """A queue's question, as a lead creates it and as the queue answers it (choices for a
    choice question, min and max for a rating)."""

    key = serializers.SlugField(max_length=50)
    type = choice_field(Question.Type.choices)
    prompt = serializers.CharField(max_length=500)
    choices = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=50
    )
    min = serializers.IntegerField(required=False, min_value=INT_MIN, max_value=INT_MAX)
    max = serializers.IntegerField(required=False, min_value=INT_MIN, max_value=INT_MAX)
    required = serializers.BooleanField(required=False, default=True)  # type: ignore[assignment]
    level = choice_field(Question.Level.choices, required=False)
    anchors = serializers.DictField(
        child=serializers.CharField(max_length=MAX_ANCHOR_CHARS, allow_blank=False),
        required=False,
        help_text='A rating\'s words for points of its scale, e.g. {"1": "Unusable", '
        '"5": "Perfect"}: keys are points from min to max.',
    )

    def validate(self, data: dict) -> dict:
        if data["type"] == Question.Type.CHOICE:
            choices = data.get("choices") or []
            if len(choices) < 2:
                raise ValidationError({"choices": "A choice question needs 2 or more choices."})
            if len(set(choices)) != len(choices):
                raise ValidationError({"choices": "Choices must be distinct."})
        if data["type"] == Question.Type.RATING:
            if "min" not in data or "max" not in data:
                raise ValidationError({"min": "A rating question needs min and max."})
            if data["min"] >= data["max"]:
                raise ValidationError({"min": "Must be below max."})
            if data["max"] - data["min"] >= MAX_RATING_POINTS:
                raise ValidationError(
                    {"max": f"A rating scale has at most {MAX_RATING_POINTS} points."}
                )
        if data.get("anchors"):
            data["anchors"] = _anchors_checked(data)
        return data


def _anchors_checked(data: dict) -> dict[str, str]:
    """Anchors name points of a rating's own scale, keyed by the point as text ("1")."""
    if data["type"] != Question.Type.RATING:
        raise ValidationError({"anchors": "Only a rating question has anchors."})
    low, high = data["min"], data["max"]
    anchors = {}
    for key, text in data["anchors"].items():
        point = key.strip()
        if not POINT.fullmatch(point) or not low <= int(point) <= high:
            raise ValidationError({"anchors": f"Keys are points of the scale ({low} to {high})."})
        anchors[str(int(point))] = text
    return anchors


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "integer"}],
        "description": "A choice or a text (string), or a rating (integer).",
    }
)
class AnswerField(serializers.JSONField):
    pass


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "role": {"type": "string"},
            "content": {"description": "Usually a string; as given for free-content items."},
        },
        "required": ["role"],
        "additionalProperties": {},
        "description": "A chat message; a free-content item's messages keep any other keys "
        "they were added with.",
    }
)
class PromptMessageField(serializers.JSONField):
    pass


class QueueProgressSerializer(serializers.Serializer):
    open = serializers.IntegerField()
    complete = serializers.IntegerField()
    discarded = serializers.IntegerField()
    annotations_per_item = serializers.IntegerField()


class QueueOutputSerializer(serializers.Serializer):
    """What `QueueDetailApi.body` answers (201 on create)."""

    id = serializers.IntegerField()
    project = serializers.SlugField()
    name = serializers.CharField()
    reason = serializers.CharField(allow_null=True, help_text="A default queue's routing reason.")
    guidelines = serializers.CharField(allow_blank=True, help_text="Markdown.")
    annotations_per_item = serializers.IntegerField()
    min_item_agreement = serializers.FloatField()
    min_alpha = serializers.FloatField()
    claim_timeout_minutes = serializers.IntegerField()
    questions = QuestionSerializer(many=True)
    progress = QueueProgressSerializer()


class QuestionAgreementSerializer(serializers.Serializer):
    alpha = serializers.FloatField(allow_null=True)
    level = choice_field(Question.Level.choices)
    items = serializers.IntegerField()
    undefined_reason = serializers.CharField(allow_null=True)


class AnnotatorQualitySerializer(serializers.Serializer):
    """One annotator's quality on the deciding question (review.gate._annotator_quality)."""

    annotations = serializers.IntegerField()
    majority_agreement = serializers.FloatField(
        allow_null=True, help_text="Share agreeing with the majority, on items with 2+ answers."
    )
    gold_items = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    alpha_without = serializers.FloatField(
        allow_null=True, help_text="The queue's alpha without this annotator's answers."
    )
    flagged = serializers.BooleanField()


class QueueDetailSerializer(QueueOutputSerializer):
    agreement = serializers.DictField(
        child=QuestionAgreementSerializer(),
        help_text="Per question key; empty until the first recomputation.",
    )
    agreement_computed_at = serializers.DateTimeField(allow_null=True)
    gate = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Items per gate outcome (agreement state, decision_<decision>), once "
        "agreement was computed.",
    )
    annotators = serializers.DictField(
        child=AnnotatorQualitySerializer(),
        required=False,
        help_text="Leads only, once agreement was computed: quality per annotator, by username.",
    )


class QueueSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.SlugField()
    name = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    items = serializers.IntegerField()
    complete = serializers.IntegerField()
    mine = serializers.IntegerField(help_text="Items the caller answered.")


class QueueListSerializer(serializers.Serializer):
    queues = QueueSummarySerializer(many=True)


class ItemsAddedSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="The new items' ids, in order."
    )


class ItemResponseSerializer(serializers.Serializer):
    side = serializers.ChoiceField(choices=["left", "right", "response"])
    text = serializers.CharField(allow_blank=True)


class WithdrawnSerializer(serializers.Serializer):
    label = serializers.IntegerField()  # type: ignore[assignment]
    now = serializers.CharField(help_text="The label's rule now.")
    why = serializers.CharField()


class ItemReasonDetailSerializer(serializers.Serializer):
    """Why a routed item is in review; {} for an item added by a lead."""

    rule = serializers.CharField(required=False)
    kind = serializers.CharField(required=False)
    label = serializers.BooleanField(required=False, allow_null=True)  # type: ignore[assignment]
    confidence = serializers.FloatField(required=False)
    withdrawn = WithdrawnSerializer(required=False, help_text="A withdrawn item only.")


class ItemForReviewSerializer(serializers.Serializer):
    """What `review.selectors.item_display` answers."""

    id = serializers.IntegerField()
    reason = serializers.CharField()
    reason_text = serializers.CharField()
    prompt = serializers.ListField(child=PromptMessageField())
    responses = ItemResponseSerializer(many=True)
    diff = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(allow_blank=True)),
        allow_null=True,
        help_text="For an edit: [operation, words] pairs, operation equal, del or ins.",
    )
    claim = serializers.CharField(allow_null=True)
    detail = ItemReasonDetailSerializer()


class PresentationSerializer(serializers.Serializer):
    order = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Two responses only: the order shown, left first ([1, 0]: swapped).",
    )


class ClaimStateSerializer(serializers.Serializer):
    expires_at = serializers.DateTimeField()
    presentation = PresentationSerializer()


class ClaimSerializer(serializers.Serializer):
    item = ItemForReviewSerializer()
    claim = ClaimStateSerializer()


class AnnotationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField()
    answers = serializers.DictField(child=AnswerField(), help_text="By question key.")


class SkippedSerializer(serializers.Serializer):
    skipped = serializers.IntegerField()


class AdjudicationResultSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=Adjudication.Decision.choices)


class GoldResultSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    gold_answers = serializers.DictField(child=AnswerField(), help_text="By question key.")


class HeldOutResultSerializer(serializers.Serializer):
    held_out = serializers.IntegerField(help_text="Items now held out.")


# --- The label-quality report (feedback/quality.py) ---

WARNING_KINDS = ["agreement_drop", "rule_share", "length_ratio", "model_share"]
SOURCES = ["qa_sample", "routed"]


class QualitySegmentSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, allow_blank=True)
    feature = serializers.CharField(required=False, allow_blank=True)
    band = serializers.CharField(required=False, help_text='e.g. "0.8-0.9".')


class QualityCellSerializer(serializers.Serializer):
    rule = serializers.CharField()
    segment = QualitySegmentSerializer(
        help_text="{} for the rule overall, else one of model, feature (the value of the "
        "generation metadata key `feature_key`) or band (of the rule's heuristic confidence).",
    )
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=SOURCES,
        help_text="qa_sample: an unbiased sample of auto-accepted labels; routed: labels sent "
        "to review because they were doubtful (not a sample of what was auto-accepted).",
    )
    verdicts = serializers.IntegerField()
    right = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True, help_text="None with no verdicts.")
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class QualityWeekSerializer(serializers.Serializer):
    rule = serializers.CharField()
    week = serializers.DateField(help_text="The Monday of the week of the behaviour.")
    verdicts = serializers.IntegerField()
    right = serializers.IntegerField()
    precision = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


class QualityWarningSerializer(serializers.Serializer):
    rule = serializers.CharField(allow_blank=True, help_text='"" for a model-share warning.')
    kind = serializers.ChoiceField(choices=WARNING_KINDS)
    message = serializers.CharField()


class QualityReportSerializer(serializers.Serializer):
    target = serializers.FloatField(help_text="The routing policy's target precision.")
    min_verdicts = serializers.IntegerField(
        help_text="Verdicts a rule x band cell needs before it decides routing."
    )
    feature_key = serializers.CharField(help_text="Generation metadata key of `feature`.")
    cells = QualityCellSerializer(many=True)
    weekly = QualityWeekSerializer(many=True, help_text="Both sources together.")
    warnings = QualityWarningSerializer(many=True)
