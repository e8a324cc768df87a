from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="gleaner_projects"
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """What a user may do in one project. Superusers may do everything everywhere."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Project admin"
        LEAD = "lead", "Review lead"
        ANNOTATOR = "annotator", "Annotator"
        ML = "ml", "ML engineer (exports)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gleaner_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


KEY_PREFIX = "glk_"


def hash_api_key(raw_key: str) -> str:
    # Keys carry 190+ bits of randomness, so a plain SHA-256 is enough (no slow KDF needed)
    # and lets a request find its key with one indexed lookup.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A project's ingestion key. Only its hash is stored; the key is shown once."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a key.")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty uses the site default."
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.project})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """A new raw key with its display prefix and hash: (raw, prefix, hashed)."""
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        return raw, raw[:12], hash_api_key(raw)


class Session(models.Model):
    class Outcome(models.TextChoices):
        OPEN = "open"
        COMPLETED = "completed"
        ABANDONED = "abandoned"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    external_id = models.CharField(max_length=255)
    user_ref = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OPEN)
    outcome_signal = models.CharField(max_length=255, blank=True)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="session_unique_ref")
        ]
        indexes = [
            # The inactivity sweep: open sessions of a project by last activity.
            models.Index(
                fields=["project", "last_event_at"],
                condition=Q(outcome="open"),
                name="session_open_by_activity",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class Generation(models.Model):
    """A model output, materialised from its `generation` event (the log stays the truth)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="generations")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="generations")
    external_id = models.CharField(max_length=255)
    input = models.JSONField(default=list, help_text="Chat messages: [{role, content}].")
    output = models.TextField()
    model = models.CharField(max_length=200, blank=True)
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by"
    )
    replaces_ref = models.CharField(max_length=255, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(help_text="The generation event's timestamp.")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="generation_unique_ref")
        ]
        indexes = [
            models.Index(fields=["session", "created_at"], name="generation_by_session"),
            # Late linking: generations whose predecessor has not arrived yet.
            models.Index(
                fields=["project", "replaces_ref"],
                condition=Q(replaces__isnull=True) & ~Q(replaces_ref=""),
                name="generation_unlinked",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class Event(models.Model):
    """One behavioural event, append-only. `client_id` is the client's idempotency key."""

    class Type(models.TextChoices):
        GENERATION = "generation"
        EDIT = "edit"
        REGENERATE = "regenerate"
        COPY = "copy"
        SHARE = "share"
        VIEW = "view"
        RATING = "rating"
        SESSION_OUTCOME = "session_outcome"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="events")
    client_id = models.CharField(max_length=255)
    type = models.CharField(max_length=20, choices=Type.choices)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="events")
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    generation_ref = models.CharField(max_length=255, blank=True)
    user_ref = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(default=dict, help_text="The type's own fields, as sent.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "client_id"], name="event_unique_client_id")
        ]
        indexes = [
            models.Index(fields=["session", "timestamp"], name="event_by_session"),
            models.Index(fields=["generation", "timestamp"], name="event_by_generation"),
            # Late linking: events that arrived before their generation.
            models.Index(
                fields=["project", "generation_ref"],
                condition=Q(generation__isnull=True) & ~Q(generation_ref=""),
                name="event_unlinked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.client_id}"
