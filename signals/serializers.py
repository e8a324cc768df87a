"""The signals API's answer, for the OpenAPI schema (signals/api.py writes the rows itself)."""

from __future__ import annotations

from rest_framework import serializers

RATE_HELP = "A fraction of {}; null when there were none."


def _rate(of: str) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, help_text=RATE_HELP.format(of))


class SignalRowSerializer(serializers.Serializer):
    bucket = serializers.DateField(help_text="The first day of the bucket (a Monday for weeks).")
    group = serializers.CharField(
        allow_blank=True, help_text="The model, feature or pattern; empty when `by` is omitted."
    )
    group_label = serializers.CharField(allow_blank=True, help_text="The group's name to show.")
    generations = serializers.IntegerField()
    sessions = serializers.IntegerField(help_text="Sessions with a generation in the group.")
    edited = serializers.IntegerField()
    edit_cosmetic = serializers.IntegerField()
    edit_correction = serializers.IntegerField()
    edit_rewrite = serializers.IntegerField()
    regenerated = serializers.IntegerField()
    high_retry = serializers.IntegerField(help_text="Generations in a high-retry chain.")
    copied = serializers.IntegerField()
    shared = serializers.IntegerField()
    completed = serializers.IntegerField(help_text="Sessions that ended completed.")
    abandoned = serializers.IntegerField(help_text="Sessions that were abandoned.")
    thumbs = serializers.IntegerField(help_text="Generations given a thumb up or down.")
    thumbs_up = serializers.IntegerField()
    labels = serializers.DictField(
        child=serializers.IntegerField(), help_text="Derived labels per rule."
    )
    edit_rate = _rate("generations")
    regenerate_rate = _rate("generations")
    copy_rate = _rate("generations")
    share_rate = _rate("generations")
    thumbs_rate = _rate("generations")
    completion_rate = _rate("sessions")
    abandon_rate = _rate("sessions")
    thumbs_up_share = _rate("thumbs")
    median_dwell_ms = serializers.IntegerField(
        allow_null=True, help_text="Median reading time; null when none was reported."
    )


class SignalsSerializer(serializers.Serializer):
    rows = SignalRowSerializer(
        many=True, help_text="One per bucket and group, by bucket, then group."
    )
