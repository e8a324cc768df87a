"""The label-quality API: each derivation rule's measured precision (feedback/quality.py).

Who may read it: the project's leads, ML engineers and admins (and superusers), the same
readers as the session API; anyone else, an unknown slug included, gets 404 alike.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from config.schema import RETRY_AFTER, error_responses
from core.typing import AuthedApiRequest
from feedback.quality import project_quality
from review.serializers import QualityReportSerializer
from tenancy.access import READ_ROLES, access_project


class ProjectQualityApi(APIView):
    """Precision per rule (overall, by model, feature and confidence band; QA sample and
    routed apart), per rule and week, and the collapse guard's warnings."""

    @extend_schema(
        operation_id="project_quality",
        responses={
            200: QualityReportSerializer,
            **error_responses(
                404,
                described={
                    404: "No such project, or the caller is not its lead, ML engineer or admin."
                },
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def get(self, request: AuthedApiRequest, slug: str) -> Response:
        project = access_project(request.user, slug, READ_ROLES)
        return Response(project_quality(project).as_json())
