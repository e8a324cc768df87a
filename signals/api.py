"""The signals API: GET /api/v1/projects/<slug>/signals, the rollup rows of the Signals page
(feedback/signals.py) as JSON.

Who may read it: the project's leads, ML engineers and admins (and superusers), as the
quality API; anyone else, an unknown slug included, gets 404 alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import RETRY_AFTER, error_responses
from core.typing import AuthedApiRequest
from feedback.signals import RATES, signal_rows
from signals.forms import EARLIEST, LATEST
from signals.serializers import SignalsSerializer
from tenancy.access import READ_ROLES, access_project

RATE_KEYS = tuple(key for key, _, _ in RATES)
# Longer than any good value of a parameter: refused before it is parsed or echoed.
MAX_PARAMETER = 64


class SignalsQuerySerializer(serializers.Serializer):
    bucket = serializers.ChoiceField(
        choices=["day", "week"], default="day", help_text="Day buckets, or weeks from Monday."
    )
    by = serializers.ChoiceField(
        choices=["model", "feature", "pattern"],
        required=False,
        help_text="One row per group of this kind in each bucket; omitted: one group.",
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword: these two cannot be class attributes.
        fields = super().get_fields()
        fields["from"] = serializers.DateField(
            required=False, help_text="First day (inclusive), YYYY-MM-DD."
        )
        fields["to"] = serializers.DateField(
            required=False, help_text="Last day (inclusive), YYYY-MM-DD."
        )
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("from", "to"):
            value = attrs.get(name)
            if value is not None and not EARLIEST <= value <= LATEST:
                raise ValidationError({name: [f"Must be between {EARLIEST} and {LATEST}."]})
        if attrs.get("from") and attrs.get("to") and attrs["from"] > attrs["to"]:
            raise ValidationError({"from": ["Must not be after 'to'."]})
        return attrs


class RowsRenderer(JSONRenderer):
    """JSON by orjson: a year of days by 50 features is 18,000 rows, which DRF's encoder
    (the standard library's) takes 300 ms to write and orjson 40. Dates as ISO dates."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        try:
            return orjson.dumps(data)
        except TypeError:  # anything orjson does not know: DRF's own encoder
            return super().render(data, accepted_media_type, renderer_context)


class ProjectSignalsApi(APIView):
    """The behavioural signals per bucket and group: counts, rates and the median reading
    time, read from rollups kept by derivation."""

    renderer_classes = [RowsRenderer]

    @extend_schema(
        operation_id="project_signals",
        parameters=[SignalsQuerySerializer, RETRY_AFTER],
        responses={
            200: SignalsSerializer,
            **error_responses(
                400,
                404,
                described={
                    400: "A bad parameter; the answer names it.",
                    404: "No such project, or the caller is not its lead, ML engineer or admin.",
                },
            ),
        },
    )
    def get(self, request: AuthedApiRequest, slug: str) -> Response:
        project = access_project(request.user, slug, READ_ROLES)
        too_long = {
            name: [f"Must be at most {MAX_PARAMETER} characters."]
            for name, value in request.query_params.items()
            if name in {"bucket", "by", "from", "to"} and len(value) > MAX_PARAMETER
        }
        if too_long:
            raise ValidationError(too_long)
        query = SignalsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        rows = signal_rows(
            project,
            bucket=data["bucket"],
            by=data.get("by"),
            date_from=data.get("from"),
            date_to=data.get("to"),
        )
        return Response({"rows": [row_json(row) for row in rows]})


def row_json(row: dict[str, Any]) -> dict[str, Any]:
    """A rollup row as the API answers it: rates to 4 places (the bucket, a date, is written
    as its ISO date by the renderer)."""
    body = dict(row)
    for key in RATE_KEYS:
        if (value := body.get(key)) is not None:
            body[key] = round(value, 4)
    return body
