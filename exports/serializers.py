"""What the exports API answers, as the OpenAPI schema documents it.

`exports.api.job_body` builds the job's answer as a plain dict; the serializers here name
exactly its keys and types (and those of the stored manifest), and tests/test_api_schema.py
checks real answers against them. `style` carries `type: ignore[assignment]` for the
reason given in feedback/serializers.py.
"""

from __future__ import annotations

from rest_framework import serializers

from exports.models import ExportJob
from feedback.models import RoutingPolicy
from review.serializers import QualityWarningSerializer


class ExportFiltersSerializer(serializers.Serializer):
    """The job's filters as validated (`ExportFilters.as_json`): only those given."""

    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    as_of = serializers.DateTimeField(required=False)
    sources = serializers.ListField(child=serializers.CharField(), required=False)
    min_confidence = serializers.FloatField(required=False)
    min_agreement = serializers.FloatField(required=False)
    queues = serializers.ListField(child=serializers.IntegerField(), required=False)
    models = serializers.ListField(child=serializers.CharField(), required=False)


class RoutingPolicySerializer(serializers.ModelSerializer):
    """The project's routing policy as the build read it: `model_to_dict` without the ids
    (and without `updated_at`, which it leaves out as not editable). The model's own fields,
    so a field added to the model is documented with it (and absent from older manifests)."""

    class Meta:
        model = RoutingPolicy
        exclude = ["id", "project", "updated_at"]


class ExportFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    split = serializers.ChoiceField(choices=["train", "eval"])
    role = serializers.ChoiceField(choices=["data", "meta"])
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()


class PrecisionEstimateSerializer(serializers.Serializer):
    estimate = serializers.FloatField(allow_null=True, help_text="None for an empty split.")
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class ExportQualitySerializer(serializers.Serializer):
    """The train split against the project's policy (feedback.quality.export_quality)."""

    rows = serializers.IntegerField()
    human_rows = serializers.IntegerField()
    human_share = serializers.FloatField(allow_null=True)
    precision = PrecisionEstimateSerializer()
    target = serializers.FloatField()
    min_human_share = serializers.FloatField()
    rule_mix = serializers.DictField(child=serializers.IntegerField(), help_text="Rows by rule.")
    warnings = QualityWarningSerializer(many=True)
    allowed_below_policy = serializers.BooleanField()
    below_policy = serializers.ListField(
        child=serializers.CharField(), help_text="Why the split is below the policy, if it is."
    )


class ExportManifestSerializer(serializers.Serializer):
    """manifest.json of a finished export (also its `manifest` in the job's answer)."""

    export_id = serializers.IntegerField()
    project = serializers.SlugField()
    format = serializers.ChoiceField(choices=ExportJob.Format.choices)
    file_format = serializers.ChoiceField(choices=ExportJob.FileFormat.choices)
    style = serializers.ChoiceField(choices=ExportJob.Style.choices)  # type: ignore[assignment]
    filters = ExportFiltersSerializer()
    as_of = serializers.DateTimeField(allow_null=True)
    policy = RoutingPolicySerializer()
    rows = serializers.DictField(child=serializers.IntegerField(), help_text="Rows per split.")
    labels = serializers.DictField(
        child=serializers.IntegerField(), help_text="Labels (and review pairs) per split."
    )
    counts_by_source = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Per split: rows by label source.",
    )
    excluded = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Labels left out of the train split, by reason (non-zero reasons only).",
    )
    quality = ExportQualitySerializer(
        required=False, help_text="Absent from exports built before the policy gate."
    )
    files = ExportFileSerializer(many=True)
    weight = serializers.CharField(help_text="How each row's weight was computed.")
    built_at = serializers.DateTimeField()


class ExportJobSerializer(serializers.Serializer):
    """What `exports.api.job_body` answers."""

    id = serializers.IntegerField()
    project = serializers.SlugField()
    format = serializers.ChoiceField(choices=ExportJob.Format.choices)
    file_format = serializers.ChoiceField(choices=ExportJob.FileFormat.choices)
    style = serializers.ChoiceField(choices=ExportJob.Style.choices)  # type: ignore[assignment]
    filters = ExportFiltersSerializer()
    allow_below_policy = serializers.BooleanField()
    status = serializers.ChoiceField(choices=ExportJob.Status.choices)
    progress = serializers.FloatField(help_text="0 to 1.")
    rows = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    manifest = ExportManifestSerializer(required=False, help_text="Done jobs only.")
    download = serializers.CharField(required=False, help_text="Done jobs only: the file's URL.")
    error = serializers.CharField(
        required=False,
        help_text="Failed jobs only: why, e.g. the export is below the project's policy.",
    )


class ExportListSerializer(serializers.Serializer):
    exports = ExportJobSerializer(many=True, help_text="The newest 100.")


class ExportQueuedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=[ExportJob.Status.QUEUED], help_text="Always queued: follow the job's URL."
    )
