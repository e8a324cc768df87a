from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenancy.models import Project


class PlaygroundKey(models.Model):
    """The publishable key the playground page uses for one origin.

    The raw key is kept because a publishable key is public by design (it sits in every page
    that sends events; the origins listed on it and its event types are what limit it).
    feedback keeps only hashes, so without this row each visit would need a new key.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=255)
    raw_key = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "origin"], name="playground_key_origin")
        ]

    def __str__(self) -> str:
        return f"{self.raw_key[:12]}… ({self.origin})"
