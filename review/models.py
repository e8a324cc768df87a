from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.storable import json_problem
from feedback.models import Generation, Label
from tenancy.models import Project

MAX_CLAIM_TIMEOUT_MINUTES = 7 * 24 * 60  # a week: a claim's expiry stays a real date
MAX_GUIDELINES = 50_000
MAX_RATING_POINTS = 101  # e.g. 0..100: every point is a form option and an agreement bin


class Queue(models.Model):
    class Reason(models.TextChoices):
        """The routing reason a project's default queue receives (blank: a custom queue)."""

        LOW_CONFIDENCE = "low_confidence", "Low confidence"
        HIGH_RETRY = "high_retry", "High retry"
        ABANDONED = "abandoned", "Abandoned session"
        QA_SAMPLE = "qa_sample", "QA sample of auto-accepted labels"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=200)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown, rendered sanitised.")
    annotations_per_item = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    claim_timeout_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CLAIM_TIMEOUT_MINUTES)],
    )
    min_item_agreement = models.FloatField(
        default=0.66, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    min_alpha = models.FloatField(
        default=0.667, validators=[MinValueValidator(-1.0), MaxValueValidator(1.0)]
    )
    agreement_tolerance = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0)],
        help_text="Ordinal/interval answers this close count as agreeing (per item).",
    )
    min_annotator_agreement = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Annotators agreeing with the majority (or gold) less often are flagged.",
    )
    accept_answers = models.JSONField(
        default=list,
        blank=True,
        help_text='Decision answers that accept the label (default ["yes", "chosen"]).',
    )
    reject_answers = models.JSONField(
        default=list,
        blank=True,
        help_text='Decision answers that reject the label (default ["no", "rejected"]).',
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="review_queues"
    )
    is_active = models.BooleanField(default=True)
    # Item counts by status, kept by the services that change statuses (and recounted by
    # every agreement recomputation), so progress never counts a large queue on a page view.
    items_open = models.PositiveIntegerField(default=0, editable=False)
    items_complete = models.PositiveIntegerField(default=0, editable=False)
    items_discarded = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "reason"],
                condition=~Q(reason=""),
                name="queue_one_default_per_reason",
            )
        ]

    def __str__(self) -> str:
        return f"{self.project} / {self.name}"

    def clean(self) -> None:
        """Checks for the admin form: what PostgreSQL cannot store, named by field."""
        _check_storable(self, "accept_answers", "reject_answers")


class Question(models.Model):
    class Type(models.TextChoices):
        CHOICE = "choice", "Single choice"
        RATING = "rating", "Rating scale"
        TEXT = "text", "Free text"

    class Level(models.TextChoices):
        NOMINAL = "nominal"
        ORDINAL = "ordinal"
        INTERVAL = "interval"
        RATIO = "ratio"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=50)
    type = models.CharField(max_length=10, choices=Type.choices)
    prompt = models.CharField(max_length=500)
    choices = models.JSONField(default=list, blank=True, help_text="Ordered options (choice).")
    min_value = models.IntegerField(null=True, blank=True)
    max_value = models.IntegerField(null=True, blank=True)
    required = models.BooleanField(default=True)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.NOMINAL)
    anchors = models.JSONField(
        default=dict,
        blank=True,
        help_text='Words for points of a rating scale, e.g. {"1": "Unusable", "5": "Perfect"}.',
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["queue", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["queue", "key"], name="question_unique_key")]

    def __str__(self) -> str:
        return self.key

    def clean(self) -> None:
        _check_storable(self, "choices", "anchors")
        if self.type != self.Type.RATING:
            return
        if self.min_value is None or self.max_value is None:
            raise ValidationError({"min_value": "A rating question needs min and max."})
        if self.min_value >= self.max_value:
            raise ValidationError({"min_value": "Must be below max."})
        if self.max_value - self.min_value >= MAX_RATING_POINTS:
            raise ValidationError(
                {"max_value": f"A rating scale has at most {MAX_RATING_POINTS} points."}
            )


class Item(models.Model):
    """Something to review: a derived label, a generation, or free content."""

    class Status(models.TextChoices):
        OPEN = "open"
        COMPLETE = "complete"
        DISCARDED = "discarded"

    class AgreementState(models.TextChoices):
        PENDING = "pending"
        AGREED = "agreed"
        DISPUTED = "disputed"

    class Decision(models.TextChoices):
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        EXCLUDED = "excluded"

    # No index of its own: item_by_queue_status leads with queue.
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="items", db_index=False)
    label = models.ForeignKey(
        Label, null=True, blank=True, on_delete=models.CASCADE, related_name="review_items"
    )
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.CASCADE, related_name="review_items"
    )
    content = models.JSONField(default=dict, blank=True, help_text="{prompt, responses}")
    reason = models.CharField(max_length=30, help_text="Why it is here.")
    reason_detail = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    annotation_count = models.PositiveSmallIntegerField(default=0)
    agreement = models.FloatField(
        null=True, blank=True, help_text="Lowest per-question agreement over gated questions."
    )
    agreement_state = models.CharField(
        max_length=10, choices=AgreementState.choices, default=AgreementState.PENDING
    )
    decision = models.CharField(
        max_length=10, choices=Decision.choices, blank=True, help_text="What the gate decided."
    )
    decision_reason = models.CharField(max_length=255, blank=True)
    preferred_response = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="For free content with two responses: the one reviewers agreed is better "
        "(0 or 1), which makes the item a preference pair of source 'review'.",
    )
    gold_answers = models.JSONField(
        null=True, blank=True, help_text="Known answers, set by a lead, for annotator quality."
    )
    held_out = models.BooleanField(
        default=False, help_text="Kept out of training exports; exported as evaluation split."
    )
    reopened_at = models.DateTimeField(
        null=True, blank=True, help_text="When a lead last reopened the item for changes."
    )
    reopened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "label"],
                condition=Q(label__isnull=False),
                name="item_one_per_label",
            )
        ]
        indexes = [
            # Progress counts per status, answered from the index alone.
            models.Index(fields=["queue", "status"], name="item_by_queue_status"),
            # "Next item": open items of a queue by priority, then age.
            models.Index(
                fields=["queue", "-priority", "id"],
                condition=Q(status="open"),
                name="item_open_by_priority",
            ),
            # Exports: a queue's free-content items (review pairs) without its label items,
            # so a project whose queues hold only label items answers at once.
            models.Index(
                fields=["queue", "id"],
                condition=Q(label__isnull=True),
                name="item_free_by_queue",
            ),
            # A queue's gold items (few), which every agreement recompute reads: without it
            # the read went through all the queue's items (0.06 s for 333k).
            models.Index(
                fields=["queue"],
                condition=Q(gold_answers__isnull=False),
                name="item_gold_by_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"Item {self.pk} ({self.reason})"

    def clean(self) -> None:
        _check_storable(self, "content", "reason_detail", "gold_answers")

    @property
    def is_label_pair(self) -> bool:
        """A derived preference pair: its two responses are the user's chosen and rejected
        ones. Read from the kind recorded when the label was routed, so the label itself
        is not loaded."""
        return (
            self.label_id is not None
            and self.reason_detail.get("kind") == Label.Kind.PREFERENCE_PAIR
        )

    @property
    def is_free_pair(self) -> bool:
        """Free content with two responses (response 1 and 2), of which reviewers may
        prefer one: the gate then makes it a preference pair of source "review"."""
        if self.label_id is not None:
            return False
        responses = self.content.get("responses") if isinstance(self.content, dict) else None
        return isinstance(responses, list) and len(responses) == 2


class Assignment(models.Model):
    """One annotator's hold on, or history with, one item.

    A `claimed` row reserves one of the item's annotation slots until `expires_at`;
    `submitted` and `skipped` rows keep the item from being offered to this annotator
    again. Expired claims are deleted by the reaper (or when their owner claims again).
    """

    class Status(models.TextChoices):
        CLAIMED = "claimed"
        SUBMITTED = "submitted"
        SKIPPED = "skipped"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_assignments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CLAIMED)
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    presentation = models.JSONField(
        default=dict, blank=True, help_text="How the item was shown, e.g. left/right order."
    )
    # A database default too: the claim and answer statements (review/claims.py) insert
    # assignments in SQL without naming it.
    skip_reason = models.CharField(max_length=500, blank=True, db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="assignment_once_per_user")
        ]
        indexes = [
            models.Index(fields=["queue", "user", "status"], name="assignment_by_user"),
            models.Index(
                fields=["expires_at"], condition=Q(status="claimed"), name="assignment_open_claims"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.status} item {self.item_id}"


class Annotation(models.Model):
    # No indexes of their own: annotation_once_per_user leads with item, annotation_by_user
    # with user (each would cost every submit for nothing).
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="annotations", db_index=False
    )
    # Its item's queue (items never change queue), so that the agreement recompute reads a
    # queue's answers without joining them to its items (review/gate.py).
    queue = models.ForeignKey(
        Queue, on_delete=models.CASCADE, related_name="+", db_index=False, editable=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="review_annotations",
        db_index=False,
    )
    answers = models.JSONField(help_text="As given, e.g. 'left'.")
    values = models.JSONField(
        default=dict, help_text="Answers mapped back through the presentation, e.g. 'chosen'."
    )
    presentation = models.JSONField(default=dict, blank=True)
    seconds_spent = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text="When its annotator last changed it (blank: never)."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="annotation_once_per_user")
        ]
        indexes = [
            models.Index(fields=["user", "created_at"], name="annotation_by_user"),
            # The agreement recompute: a queue's answers.
            models.Index(fields=["queue"], name="annotation_by_queue"),
            # The stale-agreement sweep: annotations newer than a queue's latest snapshot.
            models.Index(fields=["created_at"], name="annotation_by_time"),
            # The same sweep for answers changed since (few: only changed ones are indexed).
            models.Index(
                fields=["updated_at"],
                condition=Q(updated_at__isnull=False),
                name="annotation_changed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on item {self.item_id}"


class Adjudication(models.Model):
    """A lead's final decision on a disputed item, kept apart from annotations."""

    class Decision(models.TextChoices):
        ACCEPTED = "accepted", "Accept the label"
        REJECTED = "rejected", "Reject the label"
        DISCARDED = "discarded", "Discard the item"

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="adjudication")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=Decision.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.decision} on item {self.item_id}"


class ItemFlag(models.Model):
    """Someone's flag on an item (a problem with its content, a guideline question),
    listed for the queue's leads until one of them resolves it."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="flags")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_flags"
    )
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["queue", "-created_at"],
                condition=Q(resolved_at__isnull=True),
                name="flag_open_by_queue",
            ),
            models.Index(fields=["item"], name="flag_by_item"),
        ]

    def __str__(self) -> str:
        return f"Flag on item {self.item_id} by {self.user}"


class AnnotatorExclusion(models.Model):
    """A lead's decision to leave one annotator's answers in a queue out of agreement and
    the gate. Kept when revoked (revoked_at set), so the record shows who did what."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="exclusions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "user"],
                condition=Q(revoked_at__isnull=True),
                name="exclusion_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} excluded from {self.queue}"


class AgreementSnapshot(models.Model):
    """One recomputation of a queue's agreement; the latest is shown, the series charted."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(default=timezone.now)
    annotations = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0, help_text="How long the computation took.")
    results = models.JSONField(default=dict)

    class Meta:
        get_latest_by = "computed_at"
        indexes = [models.Index(fields=["queue", "-computed_at"], name="snapshot_latest")]

    def __str__(self) -> str:
        return f"{self.queue} at {self.computed_at:%Y-%m-%d %H:%M}"


def _check_storable(instance: models.Model, *json_fields: str) -> None:
    """Raise ValidationError naming each JSON field whose value PostgreSQL cannot store
    (NUL, lone surrogates, non-finite numbers, over-deep nesting): the admin's forms
    parse JSON text into exactly such values."""
    errors = {}
    for name in json_fields:
        problem = json_problem(getattr(instance, name), max_depth=20, max_text=10**6)
        if problem:
            errors[name] = problem
    if errors:
        raise ValidationError(errors)
