"""Shared pieces of the OpenAPI schema (drf-spectacular): the error body, the error answers
by status code, the Retry-After header, and the ingestion key's security scheme.

An operation lists the errors it can really answer:

    @extend_schema(
        responses={200: OutputSerializer, **error_responses(400, 404)},
        parameters=[RETRY_AFTER],
    )

401, 429 and 503 are added to every operation: each one authenticates (and throttles
failed credentials), and any of them can meet a database or cache outage.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Why a request was refused. `detail` says it for a person; `errors` names each bad
    field (or question, or filter) with its message. A request body refused by its
    serializer names each bad field at the top level instead, with a list of messages
    ({"name": ["This field is required."]}; nested under the field for lists and objects)."""

    detail = serializers.CharField(required=False, help_text="What went wrong.")
    # Shadows Serializer.errors: this serializer only describes answers, it never validates.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(),
        required=False,
        help_text="Field name -> message (an object of messages for a nested field).",
    )


# A field's error as DRF and our own checks give it: a message, a list of messages (or of
# per-item errors, {} for a good item), or per-key errors of a nested field.
FIELD_ERROR = {
    "description": "A message, a list of them, or the errors of a nested field by key.",
    "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/FieldError"}},
    ],
}


class ErrorSchema(OpenApiSerializerExtension):
    """The shared error body, with its field errors typed (a serializer cannot say
    "any other key is a bad field's error")."""

    target_class = ErrorSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        field_error = ResolvedComponent(
            name="FieldError",
            type=ResolvedComponent.SCHEMA,
            object="FieldError",
            schema=FIELD_ERROR,
        )
        auto_schema.registry.register_on_missing(field_error)
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["properties"]["errors"]["additionalProperties"] = field_error.ref
        schema["additionalProperties"] = field_error.ref
        return schema


ERROR_DESCRIPTIONS = {
    400: "Bad input; the answer names each bad field.",
    401: "Missing, unknown or revoked credentials.",
    403: "Not allowed: the caller's role may not do this, or a session-cookie request "
    "came without its CSRF token.",
    404: "No such object, or one the caller may not see (both answer alike).",
    409: "Conflicts with the current state.",
    413: "The request is too large.",
    429: "Too many requests, or too many failed credentials from this address: retry after "
    "Retry-After seconds.",
    503: "The database or the cache is unavailable and nothing was stored: retry after "
    "Retry-After seconds.",
}
ALWAYS = (401, 429, 503)


def error_responses(
    *codes: int, described: dict[int, str] | None = None
) -> dict[int, OpenApiResponse]:
    """The error answers `codes` (plus 401, 429 and 503) with the shared error body;
    `described` says what a code means for this operation, where the general text is vague."""
    described = described or {}
    return {
        code: OpenApiResponse(
            ErrorSerializer, description=described.get(code, ERROR_DESCRIPTIONS[code])
        )
        for code in sorted({*codes, *ALWAYS})
    }


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    OpenApiParameter.HEADER,
    response=[429, 503],
    description="Seconds to wait before retrying.",
)


class ProjectKeyScheme(OpenApiAuthenticationExtension):
    """`Authorization: Bearer <key>`: a project's ingestion key (it can only send events)."""

    target_class = "tenancy.authentication.ProjectKeyAuthentication"
    name = "ProjectKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project's ingestion key: it can only send events.",
        }
