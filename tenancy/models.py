"""Who may do what where: projects, their members and roles, and their ingestion keys.

Every other app builds on these; this app imports none of them. The tables keep the names
they had when they lived in the feedback app (migration tenancy/0001 moved the models only).
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="gleaner_projects"
    )

    class Meta:
        db_table = "feedback_project"  # the table predates the app (moved from feedback)
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
        db_table = "feedback_membership"
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


KEY_PREFIX = "glk_"
PUBLISHABLE_KEY_PREFIX = "glpub_"
# What a page in a browser may report about a generation it was shown. A generation itself
# (the prompt and the model's answer) comes from the server, with a secret key: a page that
# could send one could make up training data.
PUBLISHABLE_EVENT_TYPES = frozenset(
    {"edit", "regenerate", "copy", "share", "view", "rating", "session_outcome"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The cache entry holding the origins of all active publishable keys (config/cors.py).
PUBLISHABLE_ORIGINS_CACHE_KEY = "publishable-origins"


def hash_api_key(raw_key: str) -> str:
    # Keys carry 190+ bits of randomness, so a plain SHA-256 is enough (no slow KDF needed)
    # and lets a request find its key with one indexed lookup.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def origin_normalize(value: object) -> str:
    """`value` as a browser sends it in `Origin` (scheme://host[:port], lower case, no default
    port), or raises ValidationError saying what is wrong. A trailing "/" is dropped."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("An origin must be a non-empty string like https://app.example.com.")
    text = value.strip()
    if text.endswith("/") and text.count("/") == 3:
        text = text[:-1]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ValidationError(f"{value!r} is not an origin: {error}.") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValidationError(f"{value!r}: the scheme must be http or https.")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValidationError(f"{value!r}: an origin is scheme://host[:port], with no user.")
    if parts.path or parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValidationError(f"{value!r}: an origin has no path, query or fragment.")
    if "*" in parts.hostname or any(c.isspace() for c in text):
        raise ValidationError(f"{value!r}: list exact origins; no wildcards or spaces.")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # IPv6
    origin = f"{parts.scheme}://{host}"
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        origin += f":{port}"
    return origin


def validate_origins(value: object) -> None:
    if not isinstance(value, list):
        raise ValidationError("Allowed origins must be a list of origins.")
    for origin in value:
        if origin_normalize(origin) != origin:
            raise ValidationError(
                f"{origin!r}: write it as {origin_normalize(origin)!r} (as browsers send it)."
            )


class ApiKey(models.Model):
    """A project's ingestion key. Only its hash is stored; the key is shown once.

    A secret key (glk_...) lives on the client's server and may send every event type. A
    publishable key (glpub_...) may sit in a web page: it only sends the events a browser
    sees (PUBLISHABLE_EVENT_TYPES), only from the origins listed on it.
    """

    class Kind(models.TextChoices):
        SECRET = "secret", "Secret (server)"
        PUBLISHABLE = "publishable", "Publishable (browser)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SECRET)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a key.")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_origins],
        help_text="Publishable keys: the exact origins (https://app.example.com) whose pages "
        "may send events with this key.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Requests per minute; empty uses the site default (its own for publishable "
        "keys).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "feedback_apikey"
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.project})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_publishable(self) -> bool:
        return self.kind == self.Kind.PUBLISHABLE

    @staticmethod
    def generate(kind: str = "secret") -> tuple[str, str, str]:
        """A new raw key with its display prefix and hash: (raw, prefix, hashed)."""
        start = PUBLISHABLE_KEY_PREFIX if kind == ApiKey.Kind.PUBLISHABLE else KEY_PREFIX
        raw = start + secrets.token_urlsafe(32)
        return raw, raw[:12], hash_api_key(raw)
