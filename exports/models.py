from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenancy.models import Project


class ExportJob(models.Model):
    class Format(models.TextChoices):
        DPO = "dpo", "DPO (prompt, chosen, rejected)"
        KTO = "kto", "KTO (prompt, completion, label)"
        SFT = "sft", "SFT (messages)"
        OPENAI_PREFERENCE = "openai_preference", "OpenAI preference fine-tuning"

    class FileFormat(models.TextChoices):
        JSONL = "jsonl", "JSON Lines"
        PARQUET = "parquet", "Parquet"

    class Style(models.TextChoices):
        STANDARD = "standard", "Standard (strings)"
        CONVERSATIONAL = "conversational", "Conversational (message lists)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    format = models.CharField(max_length=20, choices=Format.choices)
    file_format = models.CharField(max_length=10, choices=FileFormat.choices)
    style = models.CharField(max_length=20, choices=Style.choices, default=Style.STANDARD)
    filters = models.JSONField(default=dict, blank=True)
    allow_below_policy = models.BooleanField(
        default=False,
        help_text="Build even if the export is below the project's policy (human-verified "
        "share, estimated precision); the manifest then says so.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    rows = models.PositiveBigIntegerField(default=0)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Bumped while building; a stale one means a dead worker."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        default=timezone.now,
        help_text="Last handed to the broker; the sweep hands over again a job queued too long.",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="export_by_project"),
            models.Index(
                fields=["heartbeat_at"],
                condition=Q(status="running"),
                name="export_running_by_heartbeat",
            ),
            models.Index(
                fields=["enqueued_at"],
                condition=Q(status="queued"),
                name="export_queued_by_enqueued",
            ),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk} ({self.format}/{self.file_format}, {self.status})"

    @property
    def directory(self) -> str:
        return f"exports/{self.project_id}/{self.pk}"
