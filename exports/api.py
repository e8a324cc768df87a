"""The exports API (DESIGN.md, "Exports")."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.parsers import DepthSafeJSONParser
from config.schema import RETRY_AFTER, error_responses
from core.typing import AuthedApiRequest
from exports import inputs, selectors, services
from exports.filters import FiltersInvalid, parse_filters
from exports.models import ExportJob
from exports.serializers import (
    ExportJobSerializer,
    ExportListSerializer,
    ExportManifestSerializer,
    ExportQueuedSerializer,
)


def job_body(job: ExportJob) -> dict:
    body = {
        "id": job.pk,
        "project": job.project.slug,
        "format": job.format,
        "file_format": job.file_format,
        "style": job.style,
        "filters": job.filters,
        "allow_below_policy": job.allow_below_policy,
        "status": job.status,
        "progress": job.progress,
        "rows": job.rows,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
    if job.status == ExportJob.Status.DONE:
        body["manifest"] = job.manifest
        body["download"] = f"/api/v1/exports/{job.pk}/download"
    if job.status == ExportJob.Status.FAILED:
        body["error"] = job.error
    return body


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only (or the words "true" / "false", all a form body can send);
    DRF's own BooleanField would also take "yes", "on", 1 and "1" and guess."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: object) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data in ("true", "false"):
            return data == "true"
        self.fail("invalid")


class ExportListCreateApi(APIView):
    parser_classes = [DepthSafeJSONParser, parsers.FormParser, parsers.MultiPartParser]

    class ListQuerySerializer(serializers.Serializer):
        project = serializers.SlugField(required=False, max_length=64)

    class ExportInputSerializer(serializers.Serializer):
        project = serializers.SlugField(max_length=64)
        format = serializers.ChoiceField(choices=ExportJob.Format.choices)
        file_format = serializers.ChoiceField(
            choices=ExportJob.FileFormat.choices, default=ExportJob.FileFormat.JSONL
        )
        # Named like Field.style, as in exports/serializers.py.
        style = serializers.ChoiceField(  # type: ignore[assignment]
            choices=ExportJob.Style.choices, default=ExportJob.Style.STANDARD
        )
        filters = serializers.DictField(required=False, default=dict)
        allow_below_policy = StrictBooleanField(
            required=False,
            default=False,
            help_text="Build even if the export is below the project's policy (human-verified "
            "share, estimated precision); otherwise such an export fails with the figures. "
            "The manifest's quality object records the choice.",
        )

    @extend_schema(
        operation_id="exports_list",
        parameters=[OpenApiParameter("project", str, required=False), RETRY_AFTER],
        responses={
            200: ExportListSerializer,
            **error_responses(400, described={400: "A bad 'project' parameter."}),
        },
    )
    def get(self, request: AuthedApiRequest) -> Response:
        query = self.ListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        jobs = selectors.exports_for_user(request.user)
        if slug := query.validated_data.get("project"):
            jobs = jobs.filter(project__slug=slug)
        return Response({"exports": [job_body(job) for job in jobs[:100]]})

    @extend_schema(
        request=ExportInputSerializer,
        responses={
            202: OpenApiResponse(
                ExportQueuedSerializer,
                description="Queued: follow GET /api/v1/exports/{id}. The job is stored and "
                "will run, also when the task broker was down at that moment (a sweep hands "
                "it over within about a minute).",
            ),
            **error_responses(
                400,
                403,
                404,
                described={
                    403: "The caller's role in the project may not export (ML or admin needed).",
                    404: "No such project, or the caller is not a member.",
                },
            ),
        },
        parameters=[RETRY_AFTER],
    )
    def post(self, request: AuthedApiRequest) -> Response:
        if problems := inputs.body_problems(request.data):
            raise ValidationError(problems)
        serializer = self.ExportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = selectors.access_export_project(request.user, data["project"])
        try:
            filters = parse_filters(data["filters"], project=project)
        except FiltersInvalid as invalid:
            raise ValidationError({"filters": invalid.errors}) from None
        job = services.export_job_create(
            project=project,
            created_by=request.user,
            fmt=data["format"],
            file_format=data["file_format"],
            style=data["style"],
            filters=filters,
            allow_below_policy=data["allow_below_policy"],
        )
        return Response({"id": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(
        responses={200: ExportJobSerializer, **error_responses(403, 404)},
        parameters=[RETRY_AFTER],
    )
    def get(self, request: AuthedApiRequest, export_id: int) -> Response:
        return Response(job_body(selectors.access_export(request.user, export_id)))


FILE_TYPES = (
    "The file: train, eval, train.meta and eval.meta as application/octet-stream (JSON Lines "
    "or Parquet), manifest as application/json, card (the dataset card) as text/markdown."
)


class ExportDownloadApi(APIView):
    """Streams a file of a finished export from disk in blocks (constant memory)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "file",
                str,
                required=False,
                description="train (default), eval, train.meta, eval.meta, manifest or card",
            ),
            RETRY_AFTER,
        ],
        responses={
            # FileResponse names the type by the file's extension.
            (200, "application/octet-stream"): OpenApiResponse(bytes, description=FILE_TYPES),
            (200, "application/json"): OpenApiResponse(
                ExportManifestSerializer, description=FILE_TYPES
            ),
            (200, "text/markdown"): OpenApiResponse(str, description=FILE_TYPES),
            **error_responses(
                400,
                403,
                404,
                described={
                    400: "Not one of the export's files.",
                    404: "No such export, or it has no files yet.",
                },
            ),
        },
    )
    def get(self, request: AuthedApiRequest, export_id: int) -> FileResponse:
        job = selectors.access_export(request.user, export_id)
        wanted = request.query_params.get("file", "train")
        if wanted not in selectors.export_files(job):
            raise ValidationError(
                {"file": f"Must be one of: {', '.join(selectors.export_files(job))}."}
            )
        found = selectors.export_file(job, wanted)  # streamed from disk in blocks
        return FileResponse(found.path.open("rb"), as_attachment=True, filename=found.download_name)
