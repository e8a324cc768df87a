"""The label-quality API: each derivation rule's measured precision (feedback/quality.py).

Who may read it: the project's leads, ML engineers and admins (and superusers), the same
readers as the session API; anyone else, an unknown slug included, gets 404 alike.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import RETRY_AFTER, error_responses
from feedback.quality import project_quality
from feedback.selectors import READ_ROLES, access_project

WARNING_KINDS = ["agreement_drop", "rule_share", "length_ratio", "model_share"]
SOURCES = ["qa_sample", "routed"]


@extend_schema_serializer(component_name="QualityCell")
class QualityCellSerializer(serializers.Serializer):
    rule = serializers.CharField()
    segment = inline_serializer(
        "QualitySegment",
        {
            "model": serializers.CharField(required=False),
            "feature": serializers.CharField(required=False),
            "band": serializers.CharField(required=False, help_text='e.g. "0.8-0.9".'),
        },
        help_text="{} for the rule overall, else one of model, feature (the value of the "
        "generation metadata key `feature_key`) or band (of the rule's heuristic confidence).",
    )
    source = serializers.ChoiceField(
        choices=SOURCES,
        help_text="qa_sample: an unbiased sample of auto-accepted labels; routed: labels sent "
        "to review because they were doubtful (not a sample of what was auto-accepted).",
    )
    verdicts = serializers.IntegerField()
    right = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True, help_text="None with no verdicts.")
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


@extend_schema_serializer(component_name="QualityWeek")
class QualityWeekSerializer(serializers.Serializer):
    rule = serializers.CharField()
    week = serializers.DateField(help_text="The Monday of the week of the behaviour.")
    verdicts = serializers.IntegerField()
    right = serializers.IntegerField()
    precision = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()


@extend_schema_serializer(component_name="QualityWarning")
class QualityWarningSerializer(serializers.Serializer):
    rule = serializers.CharField(allow_blank=True, help_text='"" for a model-share warning.')
    kind = serializers.ChoiceField(choices=WARNING_KINDS)
    message = serializers.CharField()


class ProjectQualityApi(APIView):
    """Precision per rule (overall, by model, feature and confidence band; QA sample and
    routed apart), per rule and week, and the collapse guard's warnings."""

    @extend_schema_serializer(component_name="QualityReport")
    class OutputSerializer(serializers.Serializer):
        target = serializers.FloatField(help_text="The routing policy's target precision.")
        min_verdicts = serializers.IntegerField(
            help_text="Verdicts a rule x band cell needs before it decides routing."
        )
        feature_key = serializers.CharField(help_text="Generation metadata key of `feature`.")
        cells = QualityCellSerializer(many=True)
        weekly = QualityWeekSerializer(many=True, help_text="Both sources together.")
        warnings = QualityWarningSerializer(many=True)

    @extend_schema(
        operation_id="project_quality",
        responses={
            200: OutputSerializer,
            **error_responses(
                404,
                described={
                    404: "No such project, or the caller is not its lead, ML engineer or admin."
                },
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def get(self, request: Request, slug: str) -> Response:
        project = access_project(request.user, slug, READ_ROLES)
        return Response(project_quality(project).as_json())
