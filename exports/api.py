"""The exports API (DESIGN.md, "Exports")."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exports import selectors, services
from exports.models import ExportJob


def job_body(job: ExportJob) -> dict:
    body = {
        "id": job.pk,
        "project": job.project.slug,
        "format": job.format,
        "file_format": job.file_format,
        "style": job.style,
        "filters": job.filters,
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


class ExportListCreateApi(APIView):
    class ExportInputSerializer(serializers.Serializer):
        project = serializers.SlugField()
        format = serializers.ChoiceField(choices=ExportJob.Format.choices)
        file_format = serializers.ChoiceField(
            choices=ExportJob.FileFormat.choices, default=ExportJob.FileFormat.JSONL
        )
        style = serializers.ChoiceField(
            choices=ExportJob.Style.choices, default=ExportJob.Style.STANDARD
        )
        filters = serializers.JSONField(required=False, default=dict)

    @extend_schema(
        operation_id="exports_list",
        parameters=[OpenApiParameter("project", str, required=False)],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        jobs = selectors.exports_for_user(request.user)
        if slug := request.query_params.get("project"):
            jobs = jobs.filter(project__slug=slug)
        return Response({"exports": [job_body(job) for job in jobs[:100]]})

    @extend_schema(request=ExportInputSerializer, responses={202: dict})
    def post(self, request: Request) -> Response:
        serializer = self.ExportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = selectors.access_export_project(request.user, data["project"])
        try:
            filters = selectors.parse_filters(data["filters"], project=project)
        except selectors.FiltersInvalid as invalid:
            raise ValidationError({"filters": invalid.errors}) from None
        job = services.export_job_create(
            project=project,
            created_by=request.user,
            fmt=data["format"],
            file_format=data["file_format"],
            style=data["style"],
            filters=filters,
        )
        return Response({"id": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request: Request, export_id: int) -> Response:
        return Response(job_body(selectors.access_export(request.user, export_id)))


class ExportDownloadApi(APIView):
    """Streams a file of a finished export from disk in blocks (constant memory)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "file",
                str,
                required=False,
                description="train (default), eval, train.meta, eval.meta, manifest or card",
            )
        ],
        responses={(200, "application/octet-stream"): bytes},
    )
    def get(self, request: Request, export_id: int) -> FileResponse:
        job = selectors.access_export(request.user, export_id)
        wanted = request.query_params.get("file", "train")
        if wanted not in selectors.export_files(job):
            raise ValidationError(
                {"file": f"Must be one of: {', '.join(selectors.export_files(job))}."}
            )
        return selectors.export_file_response(job, wanted)
